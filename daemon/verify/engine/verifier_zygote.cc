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
#include "verify/engine/packet_socket.h"
#include "verify/engine/verifier_child.h"
#include "verify/engine/warm_channel.h"
#include "verify/engine/warm_up.h"
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

struct ZygoteReportWire {
  std::uint32_t kind;
  std::int32_t pid;
  std::int32_t status;
  std::uint32_t reserved;
  std::uint64_t id;
};

// A request carries the arguments of one child: a path of at most PATH_MAX and a few numbers.
constexpr std::size_t kMaxRequestBytes = 64u << 10;
constexpr std::size_t kJobFds = 3;  // the checkpoint, the child's stdout, its stderr

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
  SendRecord(socket, ZygoteReportWire{static_cast<std::uint32_t>(kind), pid, status, 0, id});
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
    buffer.resize(kMaxRequestBytes);
    std::vector<int> received;
    const int got = ReceiveWithFds(socket, &buffer, &received, 0);
    if (got < 0 && (errno == EAGAIN || errno == EMSGSIZE)) continue;  // a truncated one: dropped
    if (got <= 0) break;  // the daemon is gone, or stopping
    const std::size_t n = buffer.size();
    RequestHeader header{};
    const bool whole = n >= sizeof header;
    if (whole) std::memcpy(&header, buffer.data(), sizeof header);
    if (whole && header.type == RequestType::kKill) {
      for (const auto& [pid, id] : children)
        if (id == header.id) kill(pid, SIGKILL);  // not reaped yet: still ours, never reused
    } else if (whole && header.type == RequestType::kRun && received.size() == kJobFds) {
      std::vector<std::string> args =
          SplitNulStrings(buffer.data() + sizeof header, n - sizeof header);
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
          SplitNulStrings(buffer.data() + sizeof header, n - sizeof header);
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
  // The zygote reads no file and opens none: it holds only its socket (and, below, its own
  // sealed warm-up file), and nothing a child could inherit by accident.
  syscall(SYS_close_range, kZygoteSocketFd + 1, UINT_MAX, 0);
  std::string err;
  if (!DropCapabilities(&err) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    std::cerr << "ckptwatch " << kVerifierZygoteCommand
              << ": cannot drop privileges: " << (err.empty() ? std::strerror(errno) : err) << "\n";
    return 2;
  }
  // What every child would otherwise do first (and what makes an exec'd child slow): libhdf5's
  // start-up. It opens no file. First malloc's settings, which the children inherit.
  KeepFreedHeapForNextFile();
  H5open();
  InitHdf5ErrorHandling();
  // And what a verifier's first file would otherwise pay for once per process: libhdf5's lazily
  // built tables, the heap a verification uses. The zygote verifies our own warm-up file
  // (warm_up.h), never a user's, and keeps it open (sealed) for its warm verifiers' warm-up.
  if (!WarmUp(VerifyOptions{}, &err))
    std::cerr << "ckptwatch " << kVerifierZygoteCommand << ": warm-up: " << err << "\n";

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

namespace {

// One request: its header and arguments in one datagram, with `fds` attached.
bool SendRequest(int socket, const RequestHeader& header, const std::vector<std::string>& args,
                 const std::vector<int>& fds, std::string* err) {
  std::size_t size = sizeof header;
  for (const std::string& arg : args) size += arg.size() + 1;
  if (size > kMaxRequestBytes) {
    *err = "the job's arguments are too long for the zygote";
    return false;
  }
  return SendWithFds(socket, std::string_view(reinterpret_cast<const char*>(&header), sizeof header),
                     args, fds, err);
}

}  // namespace

bool SendZygoteJob(int socket, std::uint64_t id, const std::vector<std::string>& child_args,
                   int file_fd, int out_fd, int err_fd, std::string* err) {
  return SendRequest(socket, RequestHeader{RequestType::kRun, 0, id}, child_args,
                     {file_fd, out_fd, err_fd}, err);
}

bool SendZygoteStartWarm(int socket, std::uint64_t id, const std::vector<std::string>& warm_args,
                         int channel_fd, std::string* err) {
  return SendRequest(socket, RequestHeader{RequestType::kStartWarm, 0, id}, warm_args,
                     {channel_fd}, err);
}

bool SendZygoteKill(int socket, std::uint64_t id) {
  return SendRecord(socket, RequestHeader{RequestType::kKill, 0, id}, MSG_DONTWAIT);
}

int ReadZygoteReport(int socket, ZygoteReport* report) {
  ZygoteReportWire wire{};
  if (const int rc = ReceiveRecord(socket, &wire); rc != 1) return rc;
  report->id = wire.id;
  report->kind = static_cast<ZygoteReport::Kind>(wire.kind);
  report->pid = wire.pid;
  report->wait_status = wire.status;
  return 1;
}

}  // namespace ckptwatch
