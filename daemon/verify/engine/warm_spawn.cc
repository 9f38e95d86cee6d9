#include "verify/engine/warm_spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "base/unique_fd.h"
#include "verify/engine/verifier_child.h"

namespace ckptwatch {

// One spawned warm verifier and its channel.
class WarmProcess {
 public:
  WarmProcess(pid_t pid, int channel, uid_t owner) : pid_(pid), channel_(channel), owner_(owner) {}
  ~WarmProcess() {
    channel_.reset();  // it leaves when its channel closes
    if (!reaped_) {
      // A verifier stuck in a job is not waited for.
      if (busy_) kill(pid_, SIGKILL);
      while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  uid_t owner() const { return owner_; }
  bool usable() const { return usable_; }

  // nullopt: the job could not be sent (the caller falls back to a one-shot child).
  std::optional<VerifyResult> Run(std::uint64_t job, int fd, const std::string& path,
                                  const VerifyOptions& options, const ChildLimits& limits) {
    ChildOutcome outcome;
    struct stat st;
    if (fstat(fd, &st) == 0) outcome.file_bytes = static_cast<std::uint64_t>(st.st_size);
    const auto started = std::chrono::steady_clock::now();
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0) return std::nullopt;
    if (pipe2(err, O_CLOEXEC) != 0) {
      close(out[0]);
      close(out[1]);
      return std::nullopt;
    }
    std::vector<std::string> args = VerifierChildArgv("", path, options, limits);
    args.erase(args.begin(), args.begin() + 2);
    std::string error;
    const bool sent =
        SendWarmJob(channel_.get(), job, args, fd, out[1], err[1], WarmOutput::kThisJob, &error);
    close(out[1]);
    close(err[1]);
    UniqueFd out_read(out[0]), err_read(err[0]);
    if (!sent) {
      usable_ = false;
      return std::nullopt;
    }
    busy_ = true;
    const auto deadline = started + std::chrono::duration<double>(limits.timeout_seconds);
    pollfd fds[3] = {{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0},
                     {channel_.get(), POLLIN, 0}};
    bool reported = false, gone = false;
    WarmReport report;
    char buffer[65536];
    while (fds[0].fd >= 0 || fds[1].fd >= 0 || (!reported && !gone)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        kill(pid_, SIGKILL);
        outcome.timed_out = true;
        gone = true;
        break;
      }
      if (poll(fds, 3, static_cast<int>(std::min<long long>(left.count() + 1, 1000))) < 0 &&
          errno != EINTR)
        break;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
        if (n > 0) {
          KeepVerifierOutput(&outcome, i, buffer, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          fds[i].fd = -1;
        }
      }
      if (fds[2].fd >= 0 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
        const int rc = ReadWarmReport(channel_.get(), &report);
        if (rc == 1) reported = true;
        if (rc < 0) gone = true;
        if (rc != 0) fds[2].fd = -1;
      }
    }
    busy_ = false;
    if (reported && (report.uid_count != 1 || report.uids.size() != 1 || report.uids[0] != owner_)) {
      kill(pid_, SIGKILL);
      outcome.stderr_text += "\nkilled: the warm verifier reported files of " +
                             std::to_string(report.uid_count) + " owners\n";
      reported = false;
      gone = true;
    }
    if (!reported || report.retiring) usable_ = false;
    if (!reported) {
      // It died (or was killed): how, from its exit status.
      int status = 0;
      if (!outcome.timed_out) kill(pid_, SIGKILL);  // it may be stuck after closing its pipes
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) outcome.term_signal = WTERMSIG(status);
      if (outcome.exit_code == 0 && outcome.term_signal == 0) outcome.exit_code = 127;
    }
    outcome.elapsed_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    return ResultFromChild(path, options.level, outcome, limits);
  }

 private:
  pid_t pid_;
  UniqueFd channel_;
  uid_t owner_;
  bool usable_ = true;
  bool busy_ = false;
  bool reaped_ = false;
};

namespace {

std::unique_ptr<WarmProcess> SpawnWarm(const std::string& engine, const ChildLimits& limits,
                                       std::size_t max_files, uid_t owner) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return nullptr;
  UniqueFd mine(sv[0]), theirs(sv[1]);
  if (theirs.get() == kWarmChannelFd) theirs.reset(fcntl(sv[1], F_DUPFD_CLOEXEC, kWarmChannelFd + 1));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, theirs.get(), kWarmChannelFd);
  std::vector<std::string> argv_strings{engine, std::string(kWarmVerifierCommand)};
  for (std::string& arg : WarmVerifierArgs(limits.timeout_seconds, limits.memory_bytes, max_files))
    argv_strings.push_back(std::move(arg));
  pid_t pid = -1;
  const int rc = SpawnWithVerifierEnvironment(engine, std::move(argv_strings), &actions, &pid);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return nullptr;
  return std::make_unique<WarmProcess>(pid, mine.release(), owner);
}

}  // namespace

WarmSpawnPool::WarmSpawnPool(std::string engine, ChildLimits limits, std::size_t max_files,
                             std::size_t max_idle)
    : engine_(std::move(engine)), limits_(limits), max_files_(max_files), max_idle_(max_idle) {}

WarmSpawnPool::~WarmSpawnPool() { CloseAll(); }

void WarmSpawnPool::CloseAll() {
  std::vector<std::unique_ptr<WarmProcess>> idle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    idle.swap(idle_);
  }
  idle.clear();
}

std::size_t WarmSpawnPool::spawned() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return spawned_;
}

std::unique_ptr<WarmProcess> WarmSpawnPool::Take(uid_t owner) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
      if ((*it)->owner() != owner) continue;
      std::unique_ptr<WarmProcess> process = std::move(*it);
      idle_.erase(std::next(it).base());
      return process;
    }
    ++spawned_;
  }
  return SpawnWarm(engine_, limits_, max_files_, owner);
}

void WarmSpawnPool::Give(std::unique_ptr<WarmProcess> process) {
  std::unique_ptr<WarmProcess> evicted;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.push_back(std::move(process));
    if (idle_.size() > max_idle_) {
      evicted = std::move(idle_.front());
      idle_.erase(idle_.begin());
    }
  }
}  // `evicted` is reaped outside the lock

std::optional<VerifyResult> WarmSpawnPool::Verify(int fd, uid_t owner, const std::string& path,
                                                  const VerifyOptions& options) {
  std::unique_ptr<WarmProcess> process = Take(owner);
  if (!process) return std::nullopt;
  std::uint64_t job;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job = next_job_++;
  }
  std::optional<VerifyResult> result = process->Run(job, fd, path, options, limits_);
  if (process->usable()) Give(std::move(process));
  return result;
}

}  // namespace ckptwatch
