// The parent's side of the verifier child: its argv and environment, running it on a
// descriptor, and reading its verdict or its death (verifier_child.h).
#include "verify/engine/verifier_child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"

extern char** environ;

namespace ckptwatch {
namespace {

std::string SignalName(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  const char* description = sigdescr_np(signal);
  std::string name = abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(signal);
  if (description) name += " (" + std::string(description) + ")";
  return name;
}

std::string LastLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  std::size_t newline = text.rfind('\n');
  return std::string(newline == std::string_view::npos ? text : text.substr(newline + 1));
}

std::string Seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
}
}  // namespace

std::vector<std::string> VerifierChildArgv(const std::string& self_exe, const std::string& path,
                                           const VerifyOptions& options, const ChildLimits& limits) {
  return {self_exe,
          std::string(kVerifierChildCommand),
          "--level",
          std::string(LevelName(options.level)),
          "--full-max-bytes",
          std::to_string(options.full_max_bytes),
          "--memory-budget",
          std::to_string(options.memory_budget),
          "--timeout",
          Seconds(limits.timeout_seconds),
          "--memory-bytes",
          std::to_string(limits.memory_bytes),
          "--",
          path};
}
std::vector<std::string> VerifierChildEnvironment() {
  // Nothing of the daemon's environment reaches the child but the sanitizer
  // settings of a sanitizer build: HDF5_* variables would change how libhdf5
  // opens files (plugin paths, drivers), and the rest is none of its business.
  std::vector<std::string> env{"LIBC_FATAL_STDERR_=1"};
  for (char** e = environ; *e; ++e)
    for (const char* keep : {"ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS="})
      if (std::strncmp(*e, keep, std::strlen(keep)) == 0) env.emplace_back(*e);
  return env;
}

VerifyResult ResultFromChild(const std::string& path, Level level, const ChildOutcome& outcome,
                             const ChildLimits& limits) {
  VerifyResult result;
  std::string error;
  std::string line = LastLine(outcome.stdout_text);
  if (!outcome.timed_out && outcome.term_signal == 0 && outcome.exit_code == 0 && !line.empty()) {
    auto json = nlohmann::json::parse(line, nullptr, false);
    if (!json.is_discarded() && FromJson(json, &result, &error)) {
      result.path = path;
      result.elapsed_ms = outcome.elapsed_ms;
      return result;
    }
  }
  result.path = path;
  result.level = level;
  result.elapsed_ms = outcome.elapsed_ms;
  result.bytes = outcome.file_bytes;
  std::string detail = LastLine(outcome.stderr_text);
  if (!detail.empty()) detail = " (its last words: \"" + detail + "\")";
  if (outcome.timed_out || outcome.term_signal == SIGXCPU) {
    result.verdict = Verdict::kTimeout;
    result.reason = "verification did not finish within " + Seconds(limits.timeout_seconds) +
                    " s and was stopped (libhdf5 looping on malformed metadata, or very slow "
                    "storage); treat the file as unverified";
  } else if (outcome.term_signal != 0) {
    result.verdict = Verdict::kVerifierCrashed;
    result.reason = "the isolated verifier was killed by " + SignalName(outcome.term_signal) +
                    " while parsing the file: libhdf5 crashed on malformed data, so the file "
                    "cannot be trusted" + detail;
  } else if (outcome.exit_code == kVerifierChildExitOutOfMemory) {
    result.verdict = Verdict::kVerifierCrashed;
    result.reason = "the isolated verifier exceeded its memory limit of " +
                    std::to_string(limits.memory_bytes >> 20) +
                    " MiB (malformed sizes in the metadata, or raise verify.memory_limit)";
  } else {
    result.verdict = Verdict::kVerifierCrashed;
    result.reason = "the isolated verifier exited with status " + std::to_string(outcome.exit_code) +
                    " without a verdict" + (error.empty() ? "" : " (" + error + ")") + detail;
  }
  return result;
}

VerifyResult VerifyInChild(const std::string& self_exe, int fd, const std::string& path,
                           const VerifyOptions& options, const ChildLimits& limits) {
  const auto started = std::chrono::steady_clock::now();
  ChildOutcome outcome;
  struct stat st;
  if (fstat(fd, &st) == 0) outcome.file_bytes = static_cast<std::uint64_t>(st.st_size);
  auto crashed = [&](const std::string& what) {
    outcome.exit_code = 127;
    outcome.stderr_text = what + ": " + std::strerror(errno);
    return ResultFromChild(path, options.level, outcome, limits);
  };

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return crashed("pipe");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return crashed("pipe");
  }
  // The child gets the file as descriptor kVerifierChildFd; dup2 onto itself
  // would keep close-on-exec, so a file already there moves first.
  UniqueFd moved;
  if (fd == kVerifierChildFd) {
    moved.reset(fcntl(fd, F_DUPFD_CLOEXEC, kVerifierChildFd + 1));
    fd = moved.get();
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fd, kVerifierChildFd);

  pid_t pid = -1;
  int spawn_error = SpawnWithVerifierEnvironment(
      self_exe, VerifierChildArgv(self_exe, path, options, limits), &actions, &pid);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawn_error != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    errno = spawn_error;
    return crashed("spawn " + self_exe);
  }

  const auto deadline = started + std::chrono::duration<double>(limits.timeout_seconds);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buffer[65536];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      outcome.timed_out = true;
      break;
    }
    int ready = poll(fds, 2, static_cast<int>(std::min<long long>(left.count() + 1, 1000)));
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && ready > 0; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        KeepVerifierOutput(&outcome, i, buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& p : fds)
    if (p.fd >= 0) close(p.fd);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.term_signal = WTERMSIG(status);
  outcome.elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return ResultFromChild(path, options.level, outcome, limits);
}

std::string SelfExecutable() {
  char buffer[4096];
  ssize_t n = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (n <= 0) return "/proc/self/exe";
  return std::string(buffer, static_cast<std::size_t>(n));
}
int SpawnWithVerifierEnvironment(const std::string& executable, std::vector<std::string> argv,
                                 const posix_spawn_file_actions_t* actions, pid_t* pid) {
  std::vector<char*> args;
  for (std::string& s : argv) args.push_back(s.data());
  args.push_back(nullptr);
  std::vector<std::string> environment = VerifierChildEnvironment();
  std::vector<char*> envp;
  for (std::string& s : environment) envp.push_back(s.data());
  envp.push_back(nullptr);
  return posix_spawn(pid, executable.c_str(), actions,
                     nullptr, args.data(), envp.data());
}

}  // namespace ckptwatch
