#include "verify/engine/warm_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ckptwatch {
namespace {

constexpr std::uint32_t kJobMagic = 0x6a6f6231;  // "job1"
constexpr std::size_t kMaxFds = 4;

struct JobHeader {
  std::uint32_t magic;
  std::uint32_t reserved;
  std::uint64_t job;
};

struct ReportWire {
  std::uint64_t job;
  std::int32_t pid;
  std::uint32_t retiring;
  std::uint32_t uid_count;
  std::uint32_t uids[kWarmReportUids];
  std::uint32_t reserved;
};

}  // namespace

std::vector<std::string> WarmVerifierArgs(double timeout_seconds, std::uint64_t memory_bytes,
                                          std::size_t max_files) {
  char timeout[32];
  std::snprintf(timeout, sizeof timeout, "%g", timeout_seconds);
  return {"--timeout", timeout, "--memory-bytes", std::to_string(memory_bytes), "--max-files",
          std::to_string(max_files)};
}

bool SendWithFds(int socket, std::string_view header, const std::vector<std::string>& args,
                 const std::vector<int>& fds, std::string* err) {
  std::string payload(header);
  for (const std::string& arg : args) {
    payload += arg;
    payload += '\0';
  }
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  iovec iov{payload.data(), payload.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    if (fds.size() > kMaxFds) return (*err = "too many descriptors for one message", false);
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
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
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

bool SendWarmJob(int channel, std::uint64_t job, const std::vector<std::string>& child_args,
                 int file_fd, int out_fd, int err_fd, std::string* err) {
  JobHeader header{kJobMagic, 0, job};
  return SendWithFds(channel,
                     std::string_view(reinterpret_cast<const char*>(&header), sizeof header),
                     child_args, {file_fd, out_fd, err_fd}, err);
}

bool ParseWarmJob(const std::vector<char>& datagram, std::uint64_t* job,
                  std::vector<std::string>* args) {
  JobHeader header{};
  if (datagram.size() < sizeof header) return false;
  std::memcpy(&header, datagram.data(), sizeof header);
  if (header.magic != kJobMagic) return false;
  *job = header.job;
  *args = SplitNulStrings(datagram.data() + sizeof header, datagram.size() - sizeof header);
  return true;
}

bool SendWarmReport(int channel, const WarmReport& report) {
  ReportWire wire{};
  wire.job = report.job;
  wire.pid = static_cast<std::int32_t>(report.pid);
  wire.retiring = report.retiring ? 1 : 0;
  wire.uid_count = report.uid_count;
  for (std::size_t i = 0; i < report.uids.size() && i < kWarmReportUids; ++i)
    wire.uids[i] = report.uids[i];
  ssize_t n;
  while ((n = send(channel, &wire, sizeof wire, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return n == static_cast<ssize_t>(sizeof wire);
}

int ReadWarmReport(int channel, WarmReport* report) {
  ReportWire wire{};
  ssize_t n;
  // No control buffer: descriptors a subverted verifier attaches are closed by the kernel.
  while ((n = recv(channel, &wire, sizeof wire, MSG_DONTWAIT)) < 0 && errno == EINTR) {
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  if (n != static_cast<ssize_t>(sizeof wire)) return -1;
  report->job = wire.job;
  report->pid = static_cast<pid_t>(wire.pid);
  report->retiring = wire.retiring != 0;
  report->uid_count = wire.uid_count;
  report->uids.clear();
  for (std::uint32_t i = 0; i < wire.uid_count && i < kWarmReportUids; ++i)
    report->uids.push_back(static_cast<uid_t>(wire.uids[i]));
  return 1;
}

}  // namespace ckptwatch
