#include "verify/engine/confinement.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "base/temp_dir.h"

namespace ckptwatch {
namespace {

// Runs `body` in a forked child (confinement is for life) and returns what it
// returned: "" when every check passed, else the first failure. The answer
// travels on the child's stdout, the one descriptor (with stderr) that
// confinement keeps writable; a child that cannot report at all says so.
std::string InChild(const std::function<std::string()>& body) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(pipe_fds[0]);
    if (dup2(pipe_fds[1], STDOUT_FILENO) < 0) _exit(3);
    close(pipe_fds[1]);
    std::string answer(1, '<');
    answer.append(body()).push_back('>');
    (void)!write(STDOUT_FILENO, answer.data(), answer.size());
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string out;
  char buffer[512];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<std::size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return "child died with signal " + std::to_string(WTERMSIG(status)) + ": " + out;
  if (out.size() < 2 || out.front() != '<' || out.back() != '>') return "no answer from the child: '" + out + "'";
  return out.substr(1, out.size() - 2);
}

std::string StatusField(const std::string& status, const std::string& name) {
  std::size_t at = status.find("\n" + name + ":");
  if (at == std::string::npos) return "";
  std::size_t start = status.find_first_not_of(" \t", at + name.size() + 2);
  return status.substr(start, status.find('\n', start) - start);
}

TEST(Confinement, TheChildCanReadItsOneFileAndNothingElse) {
  testing::TempDir dir;
  testing::WriteFile(dir / "ckpt.h5", "weights");
  std::string failure = InChild([&]() -> std::string {
    int file = open((dir / "ckpt.h5").c_str(), O_RDONLY);
    int status_fd = open("/proc/self/status", O_RDONLY);  // read back after confining
    int stray = open("/etc/hostname", O_RDONLY);           // must be closed by confinement
    if (file < 0 || status_fd < 0 || stray < 0) return "setup: open failed";
    std::string err;
    if (!ConfineVerifier(file, &err)) return "ConfineVerifier: " + err;
    char buffer[16] = {};
    if (pread(file, buffer, sizeof buffer, 0) != 7) return "cannot read the kept descriptor";
    if (fcntl(stray, F_GETFD) != -1 || errno != EBADF) return "a stray descriptor survived";
    if (fcntl(status_fd, F_GETFD) != -1) return "the status descriptor survived";
    if (!SyscallFilterEnabled()) return "";
    if (open("/etc/hostname", O_RDONLY) != -1 || errno != EPERM) return "open() was allowed";
    if (openat(AT_FDCWD, (dir / "ckpt.h5").c_str(), O_RDONLY) != -1) return "openat() was allowed";
    if (socket(AF_INET, SOCK_STREAM, 0) != -1 || errno != EPERM) return "socket() was allowed";
    if (socket(AF_UNIX, SOCK_STREAM, 0) != -1) return "unix socket() was allowed";
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    if (execve("/bin/true", argv, nullptr) != -1 || errno != EPERM) return "execve() was allowed";
    if (fork() != -1) return "fork() was allowed";
    if (kill(getppid(), 0) != -1) return "kill() of another process was allowed";
    if (mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED)
      return "an executable mapping was allowed";
    void* rw = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rw == MAP_FAILED) return "a plain mapping failed";
    if (mprotect(rw, 4096, PROT_READ | PROT_EXEC) == 0) return "mprotect to executable was allowed";
    if (write(STDERR_FILENO, "", 0) != 0) return "stderr is not writable";
    return "";
  });
  EXPECT_EQ(failure, "");
}

TEST(Confinement, NoCapabilitiesAndNoNewPrivileges) {
  std::string failure = InChild([]() -> std::string {
    // The one descriptor kept is /proc/self/status: read after confining, it
    // shows the confined process (procfs builds it at each read).
    int status_fd = open("/proc/self/status", O_RDONLY);
    std::string err;
    if (status_fd < 0) return "cannot open /proc/self/status";
    if (!ConfineVerifier(status_fd, &err)) return "ConfineVerifier: " + err;
    char buffer[8192];
    ssize_t n = pread(status_fd, buffer, sizeof buffer - 1, 0);
    if (n <= 0) return "cannot read /proc/self/status after confining";
    const std::string status(buffer, static_cast<std::size_t>(n));
    for (const char* field : {"CapInh", "CapPrm", "CapEff", "CapAmb"})
      if (StatusField(status, field) != "0000000000000000")
        return std::string(field) + " is " + StatusField(status, field);
    if (StatusField(status, "NoNewPrivs") != "1") return "NoNewPrivs is " + StatusField(status, "NoNewPrivs");
    if (SyscallFilterEnabled() && StatusField(status, "Seccomp") != "2")
      return "Seccomp is " + StatusField(status, "Seccomp");
    return "";
  });
  EXPECT_EQ(failure, "");
}

// The zygote's filter: its own loop works (fork, wait, SIGKILL of its child), a child it
// forks can still confine itself and read its file, and anything else is refused.
TEST(Confinement, TheZygoteForksConfinedChildrenAndDoesNothingElse) {
  testing::TempDir dir;
  testing::WriteFile(dir / "ckpt.h5", "weights");
  std::string failure = InChild([&]() -> std::string {
    int file = open((dir / "ckpt.h5").c_str(), O_RDONLY | O_CLOEXEC);
    int status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (file < 0 || status_fd < 0) return "setup: open failed";
    std::string err;
    if (!DropCapabilities(&err) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
      return "setup: " + err;
    if (!ConfineZygote(&err)) return "ConfineZygote: " + err;
    if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) return "the zygote is dumpable";
    char buffer[8192];
    ssize_t n = pread(status_fd, buffer, sizeof buffer - 1, 0);
    if (n <= 0) return "cannot read /proc/self/status after confining";
    if (SyscallFilterEnabled() &&
        StatusField(std::string(buffer, static_cast<std::size_t>(n)), "Seccomp") != "2")
      return "Seccomp is not 2";
    // A child forked as the zygote forks one: it confines itself and reads its one file.
    // _Fork, not fork: other tests' libuv loops left an atfork handler in this binary that
    // makes a pipe in every forked child, which the filter refuses. The real zygote is a fresh
    // exec that never starts libuv, so its fork() runs no such handler.
    pid_t child = _Fork();
    if (child == 0) {
      if (dup2(file, 3) < 0) _exit(10);
      std::string child_err;
      if (!ConfineVerifier(3, &child_err)) _exit(11);
      char data[16];
      _exit(pread(3, data, sizeof data, 0) == 7 ? 0 : 12);
    }
    if (child < 0) return std::string("fork() was refused: ") + std::strerror(errno);
    int status = 0;
    if (waitpid(child, &status, 0) != child) return "waitpid() failed";
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return "the forked child could not confine itself and read: status " + std::to_string(status);
    // One that hangs is killed, as the daemon's kill request makes the zygote do.
    child = _Fork();
    if (child == 0) {
      for (;;) pause();
    }
    if (child < 0 || kill(child, SIGKILL) != 0) return "SIGKILL of its own child was refused";
    if (waitpid(child, &status, 0) != child || !WIFSIGNALED(status))
      return "the killed child was not reaped";
    if (!SyscallFilterEnabled()) return "";
    if (open("/etc/hostname", O_RDONLY) != -1 || errno != EPERM) return "open() was allowed";
    if (openat(AT_FDCWD, (dir / "ckpt.h5").c_str(), O_RDONLY) != -1) return "openat() was allowed";
    if (socket(AF_UNIX, SOCK_STREAM, 0) != -1 || errno != EPERM) return "socket() was allowed";
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    if (execve("/bin/true", argv, nullptr) != -1 || errno != EPERM) return "execve() was allowed";
    if (kill(getppid(), SIGTERM) != -1 || errno != EPERM)
      return "SIGTERM to another process was allowed";
    if (kill(getppid(), 0) != -1) return "a probe signal to another process was allowed";
    if (unshare(CLONE_NEWUSER) != -1 || errno != EPERM) return "unshare(CLONE_NEWUSER) was allowed";
    if (syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, 0) != -1 ||
        errno != EPERM)
      return "clone(CLONE_NEWUSER) was allowed";
    if (syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, getppid(), 0, 0) != -1 || errno != EPERM)
      return "ptrace() was allowed";
    if (write(file, "x", 1) != -1)
      return "write() to a descriptor other than stdout/stderr was allowed";
    if (mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) !=
        MAP_FAILED)
      return "an executable mapping was allowed";
    return "";
  });
  EXPECT_EQ(failure, "");
}

TEST(Confinement, DropCapabilitiesEmptiesEverySet) {
  std::string failure = InChild([]() -> std::string {
    std::string err;
    if (!DropCapabilities(&err)) return err;
    std::ifstream status("/proc/self/status");
    std::string text((std::istreambuf_iterator<char>(status)), std::istreambuf_iterator<char>());
    for (const char* field : {"CapInh", "CapPrm", "CapEff", "CapAmb"})
      if (StatusField(text, field) != "0000000000000000") return std::string(field) + " is " + StatusField(text, field);
    return "";
  });
  EXPECT_EQ(failure, "");
}

TEST(Confinement, AWarmVerifierReceivesOnItsChannelOnlyAndSetsOnlyItsCpuLimit) {
  testing::TempDir dir;
  testing::WriteFile(dir / "ckpt.h5", "weights");
  std::string failure = InChild([&]() -> std::string {
    int channel[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, channel) != 0) return "setup: socketpair";
    // The verifier's end goes to 4: a feeder's end that socketpair() put there moves first
    // (under CTest the descriptors below differ from a bare run, and it did land on 4).
    if (channel[0] == 4 && (channel[0] = dup(channel[0])) < 0) return "setup: dup feeder";
    if (dup2(channel[1], 4) != 4) return "setup: dup2";
    // The next job, queued before the filter: a datagram carrying the file's descriptor.
    int file = open((dir / "ckpt.h5").c_str(), O_RDONLY);
    char byte = 'j';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &file, sizeof file);
    if (file < 0 || sendmsg(channel[0], &msg, 0) != 1) return "setup: sendmsg";
    // The feeder's end stays open (as the daemon's does) on a descriptor confinement keeps.
    if (dup2(channel[0], STDERR_FILENO) != STDERR_FILENO) return "setup: dup2 feeder";
    rlimit cpu{100, 200};
    if (setrlimit(RLIMIT_CPU, &cpu) != 0) return "setup: RLIMIT_CPU";
    std::string err;
    if (!ConfineWarmVerifier(4, &err)) return "ConfineWarmVerifier: " + err;
    if (fcntl(file, F_GETFD) != -1 || fcntl(channel[0], F_GETFD) != -1)
      return "a descriptor other than 0-2 and the channel survived";
    char got = 0;
    iovec in{&got, 1};
    alignas(cmsghdr) char in_control[CMSG_SPACE(sizeof(int))] = {};
    msghdr in_msg{};
    in_msg.msg_iov = &in;
    in_msg.msg_iovlen = 1;
    in_msg.msg_control = in_control;
    in_msg.msg_controllen = sizeof in_control;
    if (recvmsg(4, &in_msg, MSG_CMSG_CLOEXEC) != 1 || got != 'j') return "recvmsg on the channel failed";
    int received = -1;
    std::memcpy(&received, CMSG_DATA(CMSG_FIRSTHDR(&in_msg)), sizeof received);
    char buffer[16] = {};
    if (pread(received, buffer, sizeof buffer, 0) != 7) return "cannot read the received file";
    if (send(4, "r", 1, 0) != 1) return "send on the channel failed";
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) != 0) return "getrusage() was refused";
    rlimit lower{50, 200};
    if (setrlimit(RLIMIT_CPU, &lower) != 0) return "setting its own CPU limit was refused";
    rlimit higher{50, 400};
    if (setrlimit(RLIMIT_CPU, &higher) == 0) return "the CPU hard limit could be raised";
    if (!SyscallFilterEnabled()) return "";
    // On stdout (a pipe) the kernel would say ENOTSOCK: EPERM is the filter's.
    if (recvmsg(STDOUT_FILENO, &in_msg, 0) != -1 || errno != EPERM) return "recvmsg elsewhere was allowed";
    if (send(STDOUT_FILENO, "x", 1, 0) != -1 || errno != EPERM) return "send elsewhere was allowed";
    rlimit memory{1 << 30, 1 << 30};
    if (setrlimit(RLIMIT_AS, &memory) != -1 || errno != EPERM) return "RLIMIT_AS could be set";
    if (open("/etc/hostname", O_RDONLY) != -1 || errno != EPERM) return "open() was allowed";
    return "";
  });
  EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace ckptwatch
