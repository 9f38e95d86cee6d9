#include "confinement.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "watch_test_util.h"

namespace ckptwatch {
namespace {

// Runs `body` in a forked child (confinement is for life) and returns what it
// wrote to the pipe: "" when every check passed, else the first failure.
std::string InChild(const std::function<std::string()>& body) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(pipe_fds[0]);
    std::string failure = body();
    (void)!write(pipe_fds[1], failure.data(), failure.size());
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
  return out;
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
    // The pipe to the parent is fd 3 or above: keep the checkpoint as fd 3
    // and the pipe as stdout, as the real child has them.
    int report = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
    (void)report;
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
    std::string err;
    int keep = open("/dev/null", O_RDONLY);
    // Read the status through a descriptor opened beforehand... which
    // confinement closes: so confine a grandchild-less copy by checking the
    // kernel's answers directly instead.
    if (!ConfineVerifier(keep, &err)) return "ConfineVerifier: " + err;
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (syscall(SYS_capget, &header, data) != 0) return std::string("capget: ") + std::strerror(errno);
    for (auto& d : data)
      if (d.effective || d.permitted || d.inheritable) return "a capability is left";
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return "no_new_privs is not set";
    if (SyscallFilterEnabled() && prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
      return "no seccomp filter";
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

}  // namespace
}  // namespace ckptwatch
