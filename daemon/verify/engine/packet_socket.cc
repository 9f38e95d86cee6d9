#include "verify/engine/packet_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ckptwatch {

bool SendWithFds(int socket, std::string_view header, const std::vector<std::string>& args,
                 const std::vector<int>& fds, std::string* err) {
  std::string payload(header);
  for (const std::string& arg : args) {
    payload += arg;
    payload += '\0';
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPacketFds)] = {};
  iovec iov{payload.data(), payload.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    if (fds.size() > kMaxPacketFds) return (*err = "too many descriptors for one message", false);
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  while ((n = sendmsg(socket, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(payload.size())) return true;
  *err = std::string("sending a job: ") + (n < 0 ? std::strerror(errno) : "short write");
  return false;
}

int ReceiveWithFds(int socket, std::vector<char>* buffer, std::vector<int>* fds, int flags) {
  fds->clear();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPacketFds)];
  iovec iov{buffer->data(), buffer->size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | flags)) < 0 && errno == EINTR) {
  }
  if (n < 0) return -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds->push_back(fd);
    }
  }
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    for (int fd : *fds) close(fd);
    fds->clear();
    errno = EMSGSIZE;
    return -1;
  }
  if (n == 0 && fds->empty()) return 0;
  buffer->resize(static_cast<std::size_t>(n));
  return 1;
}

std::vector<std::string> SplitNulStrings(const char* data, std::size_t size) {
  std::vector<std::string> args;
  std::size_t start = 0;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] != '\0') continue;
    args.emplace_back(data + start, i - start);
    start = i + 1;
  }
  return args;
}

bool SendPacket(int socket, const void* data, std::size_t size, int flags) {
  ssize_t n;
  while ((n = send(socket, data, size, MSG_NOSIGNAL | flags)) < 0 && errno == EINTR) {
  }
  return n == static_cast<ssize_t>(size);
}

int ReceivePacket(int socket, void* data, std::size_t size) {
  ssize_t n;
  while ((n = recv(socket, data, size, MSG_DONTWAIT)) < 0 && errno == EINTR) {
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  return n == static_cast<ssize_t>(size) ? 1 : -1;
}

}  // namespace ckptwatch
