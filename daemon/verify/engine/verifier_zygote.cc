#include "verify/engine/verifier_zygote.h"

#include <hdf5.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <iostream>
#include <map>

#include "verify/engine/confinement.h"
#include "verify/engine/verifier_child.h"
#include "verify/engine/warm_channel.h"
#include "verify/engine/warm_verifier.h"
#include "verify/hdf5/hdf5_handle.h"

namespace ckptwatch {
namespace {

enum class RequestType : std::uint32_t { kRun = 1, kKill = 2, kStartWarm = 3 };

struct RequestHeader {
  RequestType type;
  std::uint32_t reserved;
  std::uint64_t id;
};

struct ReportWire {
  std::uint32_t kind;
  std::int32_t pid;
  std::int32_t status;
  std::uint32_t reserved;
  std::uint64_t id;
};

// A request carries the arguments of one child: a path of at most PATH_MAX and a few numbers.
constexpr std::size_t kMaxRequestBytes = 64u << 10;
constexpr int kJobFds = 3;  // the checkpoint, the child's stdout, its stderr

// One datagram of `data` with room for (or carrying) kJobFds descriptors in `control`.
msghdr Message(iovec* iov, char* control, std::size_t control_size) {
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = control_size;
  return msg;
}

[[noreturn]] void RunChild(pid_t zygote, const std::vector<std::string>& args, int file_fd,
                           int out_fd, int err_fd) {
  // First of all: die with the zygote (VerifierChildMain() asks again, for a spawned child).
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != zygote) _exit(127);
  // The zygote's SIGCHLD handling is not the child's.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGCHLD, SIG_DFL);
  if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0 ||
      dup2(file_fd, kVerifierChildFd) < 0)
    _exit(127);
  // From here on exactly `ckptwatch __verify-child`: limits, then ConfineVerifier() (which
  // closes the socket, the signalfd and the received originals) before any byte is read.
  _exit(VerifierChildMain(args));
}

// A warm verifier (warm_verifier.h): its channel at kWarmChannelFd (over the zygote's signalfd,
// which it must not keep anyway), everything else as a one-shot child.
[[noreturn]] void RunWarm(pid_t zygote, const std::vector<std::string>& args, int channel) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != zygote) _exit(127);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGCHLD, SIG_DFL);
  if (dup2(channel, kWarmChannelFd) < 0) _exit(127);
  _exit(WarmVerifierMain(args));
}

void Report(int socket, std::uint64_t id, ZygoteReport::Kind kind, pid_t pid, int status) {
  ReportWire wire{static_cast<std::uint32_t>(kind), pid, status, 0, id};
  while (send(socket, &wire, sizeof wire, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

std::vector<std::string> SplitArgs(const char* data, std::size_t size) {
  std::vector<std::string> args;
  std::size_t start = 0;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] != '\0') continue;
    args.emplace_back(data + start, i - start);
    start = i + 1;
  }
  return args;
}

// Serves requests until the daemon closes its end; returns when it has.
void Serve(int socket, int sigchld_fd) {
  std::map<pid_t, std::uint64_t> children;
  std::vector<char> buffer(kMaxRequestBytes);
  for (;;) {
    pollfd fds[2] = {{socket, POLLIN, 0}, {sigchld_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info;
      while (read(sigchld_fd, &info, sizeof info) > 0) {
      }
      int status = 0;
      pid_t pid;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        auto it = children.find(pid);
        if (it == children.end()) continue;
        Report(socket, it->second, ZygoteReport::Kind::kExited, pid, status);
        children.erase(it);
      }
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kJobFds)];
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg = Message(&iov, control, sizeof control);
    ssize_t n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // the daemon is gone, or stopping
    std::vector<int> received;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        received.push_back(fd);
      }
    }
    RequestHeader header{};
    const bool whole = static_cast<std::size_t>(n) >= sizeof header &&
                       !(msg.msg_flags & MSG_TRUNC) && !(msg.msg_flags & MSG_CTRUNC);
    if (whole) std::memcpy(&header, buffer.data(), sizeof header);
    if (whole && header.type == RequestType::kKill) {
      for (const auto& [pid, id] : children)
        if (id == header.id) kill(pid, SIGKILL);  // not reaped yet: still ours, never reused
    } else if (whole && header.type == RequestType::kRun && received.size() == kJobFds) {
      std::vector<std::string> args =
          SplitArgs(buffer.data() + sizeof header, static_cast<std::size_t>(n) - sizeof header);
      const pid_t zygote = getpid();
      pid_t pid = fork();
      if (pid == 0) RunChild(zygote, args, received[0], received[1], received[2]);
      if (pid < 0) {
        Report(socket, header.id, ZygoteReport::Kind::kForkFailed, 0, errno);
      } else {
        children[pid] = header.id;
        Report(socket, header.id, ZygoteReport::Kind::kStarted, pid, 0);
      }
    } else if (whole && header.type == RequestType::kStartWarm && received.size() == 1) {
      std::vector<std::string> args =
          SplitArgs(buffer.data() + sizeof header, static_cast<std::size_t>(n) - sizeof header);
      const pid_t zygote = getpid();
      pid_t pid = fork();
      if (pid == 0) RunWarm(zygote, args, received[0]);
      if (pid < 0) {
        Report(socket, header.id, ZygoteReport::Kind::kForkFailed, 0, errno);
      } else {
        children[pid] = header.id;
        Report(socket, header.id, ZygoteReport::Kind::kStarted, pid, 0);
      }
    } else if (whole && (header.type == RequestType::kRun ||
                         header.type == RequestType::kStartWarm)) {
      Report(socket, header.id, ZygoteReport::Kind::kForkFailed, 0, EBADMSG);
    }
    for (int fd : received) close(fd);
  }
  for (const auto& [pid, id] : children) kill(pid, SIGKILL);
  for (const auto& [pid, id] : children) waitpid(pid, nullptr, 0);
}

}  // namespace

int VerifierZygoteMain(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::cerr << "ckptwatch " << kVerifierZygoteCommand << ": takes no arguments\n";
    return 2;
  }
  // Nothing of the zygote or the children it forks (which inherit this) is for another
  // process of this uid to read through /proc or ptrace.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 2;  // the daemon died before prctl
  // Like the child: the daemon's control signals are the daemon's; it stops us by closing
  // the socket, or with SIGKILL.
  for (int signum : {SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE}) signal(signum, SIG_IGN);
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  // The zygote reads no file and opens none: it holds only its socket, and nothing a child
  // could inherit by accident.
  syscall(SYS_close_range, kZygoteSocketFd + 1, UINT_MAX, 0);
  std::string err;
  if (!DropCapabilities(&err) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    std::cerr << "ckptwatch " << kVerifierZygoteCommand
              << ": cannot drop privileges: " << (err.empty() ? std::strerror(errno) : err) << "\n";
    return 2;
  }
  // What every child would otherwise do first (and what makes an exec'd child slow): libhdf5's
  // start-up. It opens no file.
  H5open();
  InitHdf5ErrorHandling();

  sigset_t sigchld;
  sigemptyset(&sigchld);
  sigaddset(&sigchld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &sigchld, nullptr);
  int sigchld_fd = signalfd(-1, &sigchld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigchld_fd < 0) {
    std::cerr << "ckptwatch " << kVerifierZygoteCommand << ": signalfd: " << std::strerror(errno)
              << "\n";
    return 2;
  }
  // From here on the zygote can only do its job: receive, fork, wait, SIGKILL, report.
  if (!ConfineZygote(&err)) {
    std::cerr << "ckptwatch " << kVerifierZygoteCommand << ": cannot confine: " << err << "\n";
    return 2;
  }
  Serve(kZygoteSocketFd, sigchld_fd);
  // Skip exit-time teardown (libhdf5's atexit, a sanitizer's leak check of the zygote).
  std::_Exit(0);
}

bool ZygoteSocketPair(int fds[2], std::string* err) {
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0) return true;
  *err = std::string("socketpair: ") + std::strerror(errno);
  return false;
}

bool SendZygoteJob(int socket, std::uint64_t id, const std::vector<std::string>& child_args,
                   int file_fd, int out_fd, int err_fd, std::string* err) {
  RequestHeader header{RequestType::kRun, 0, id};
  std::string payload(reinterpret_cast<const char*>(&header), sizeof header);
  for (const std::string& arg : child_args) {
    payload += arg;
    payload += '\0';
  }
  if (payload.size() > kMaxRequestBytes) {
    *err = "the job's arguments are too long for the zygote";
    return false;
  }
  const int fds[kJobFds] = {file_fd, out_fd, err_fd};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
  iovec iov{payload.data(), payload.size()};
  msghdr msg = Message(&iov, control, sizeof control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  std::memcpy(CMSG_DATA(c), fds, sizeof fds);
  ssize_t n;
  while ((n = sendmsg(socket, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(payload.size())) return true;
  *err =
      std::string("sending a job to the zygote: ") + (n < 0 ? std::strerror(errno) : "short write");
  return false;
}

bool SendZygoteStartWarm(int socket, std::uint64_t id, const std::vector<std::string>& warm_args,
                         int channel_fd, std::string* err) {
  RequestHeader header{RequestType::kStartWarm, 0, id};
  return SendWithFds(socket,
                     std::string_view(reinterpret_cast<const char*>(&header), sizeof header),
                     warm_args, {channel_fd}, err);
}

bool SendZygoteKill(int socket, std::uint64_t id) {
  RequestHeader header{RequestType::kKill, 0, id};
  ssize_t n;
  while ((n = send(socket, &header, sizeof header, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 &&
         errno == EINTR) {
  }
  return n == static_cast<ssize_t>(sizeof header);
}

int ReadZygoteReport(int socket, ZygoteReport* report) {
  ReportWire wire{};
  ssize_t n;
  while ((n = recv(socket, &wire, sizeof wire, MSG_DONTWAIT)) < 0 && errno == EINTR) {
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  if (n != static_cast<ssize_t>(sizeof wire)) return -1;
  report->id = wire.id;
  report->kind = static_cast<ZygoteReport::Kind>(wire.kind);
  report->pid = wire.pid;
  report->wait_status = wire.status;
  return 1;
}

}  // namespace ckptwatch
