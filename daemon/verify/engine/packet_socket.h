// Packets over the SOCK_SEQPACKET sockets between the daemon, the zygote and the warm verifiers:
// a datagram of a header and NUL-terminated strings with descriptors attached (SCM_RIGHTS), and
// fixed-size wire records (reports, kill requests). One place for the EINTR retries, the
// truncation checks and the descriptor bookkeeping every one of those sockets needs. No
// libhdf5 here: the light `ckptwatch` front links this file.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ckptwatch {

/// Most descriptors one datagram carries (a job: the file and its stdout/stderr pipes).
inline constexpr std::size_t kMaxPacketFds = 4;

/// Sends one datagram of `header` + `args` (NUL-terminated each) with `fds` attached, without
/// blocking. False with `*err` when it could not be sent whole.
bool SendWithFds(int socket, std::string_view header, const std::vector<std::string>& args,
                 const std::vector<int>& fds, std::string* err);

/// Receives one datagram into `buffer` (resized to what came) and its descriptors into `*fds`
/// (close-on-exec). 1: received; 0: the peer closed; -1: an error (errno). A truncated datagram
/// or descriptor list is an error (EMSGSIZE), its descriptors closed.
int ReceiveWithFds(int socket, std::vector<char>* buffer, std::vector<int>* fds, int flags);

/// Splits NUL-terminated strings.
std::vector<std::string> SplitNulStrings(const char* data, std::size_t size);

/// Sends `size` bytes as one packet (MSG_NOSIGNAL plus `flags`), retrying EINTR. True when all
/// of it went.
bool SendPacket(int socket, const void* data, std::size_t size, int flags);

/// Receives one packet of exactly `size` bytes without blocking. 1: read; 0: nothing waiting;
/// -1: the peer is gone, or sent a packet of another size. No control buffer: descriptors a
/// peer attaches are closed by the kernel.
int ReceivePacket(int socket, void* data, std::size_t size);

/// SendPacket() of a fixed-size wire struct.
template <typename Wire>
bool SendRecord(int socket, const Wire& record, int flags = 0) {
  static_assert(std::is_trivially_copyable_v<Wire>);
  return SendPacket(socket, &record, sizeof record, flags);
}

/// ReceivePacket() of a fixed-size wire struct.
template <typename Wire>
int ReceiveRecord(int socket, Wire* record) {
  static_assert(std::is_trivially_copyable_v<Wire>);
  return ReceivePacket(socket, record, sizeof *record);
}

}  // namespace ckptwatch
