#include "verify/engine/verify_queue.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "base/open_beneath.h"
#include "verify/engine/verifier_child.h"
#include "verify/engine/verifier_zygote.h"
#include "verify/engine/verify_queue_internal.h"

namespace ckptwatch {

namespace {

// A zygote that lived this long is restarted at once; one that died sooner waits, so a
// zygote that cannot start does not spin (jobs are spawned meanwhile).
constexpr auto kZygoteStable = std::chrono::seconds(10);
constexpr std::uint64_t kZygoteRestartDelayMs = 1000;
constexpr std::uint64_t kZygoteMaxRestartDelayMs = 60000;

void Allocate(uv_handle_t*, std::size_t suggested, uv_buf_t* buf) {
  buf->base = new char[suggested];
  buf->len = suggested;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Spawns `argv` (this executable) with the verifier's environment and `stdio`.
int SpawnSelf(uv_loop_t* loop, uv_process_t* process, std::vector<std::string> argv_strings,
              uv_stdio_container_t* stdio, int stdio_count, uv_exit_cb exit_cb) {
  std::vector<char*> argv = Pointers(argv_strings);
  std::vector<std::string> env_strings = VerifierChildEnvironment();
  std::vector<char*> env = Pointers(env_strings);
  uv_process_options_t options{};
  options.exit_cb = exit_cb;
  options.file = argv[0];
  options.args = argv.data();
  options.env = env.data();
  options.stdio_count = stdio_count;
  options.stdio = stdio;
  return uv_spawn(loop, process, &options);
}

std::string DescribeExit(int64_t exit_status, int term_signal) {
  if (term_signal != 0) return std::string("killed by signal ") + std::to_string(term_signal);
  return "exited with status " + std::to_string(exit_status);
}

}  // namespace

VerifyQueue::VerifyQueue(uv_loop_t* loop, std::string self_exe, std::size_t max_parallel,
                         ChildLimits limits, std::size_t max_queued, Done done,
                         ZygoteLost zygote_lost, VerifierAlarm alarm)
    : loop_(loop),
      self_exe_(std::move(self_exe)),
      max_parallel_(std::max<std::size_t>(max_parallel, 1)),
      limits_(limits),
      max_queued_(max_queued),
      done_(std::move(done)),
      zygote_lost_(std::move(zygote_lost)),
      alarm_(std::move(alarm)) {
  restart_timer_ = new uv_timer_t;
  uv_timer_init(loop_, restart_timer_);
  restart_timer_->data = this;
  StartZygote();
}

VerifyQueue::~VerifyQueue() = default;

bool VerifyQueue::Enqueue(VerifyJob job) {
  if (shutting_down_) return false;
  if (waiting_.size() >= max_queued_ && !waiting_.contains(job.path)) return false;
  // The owner picks the file's lane (fair_queue.h): one stat beneath the root,
  // no open. A name that is gone or not a file keeps lane 0; its verdict
  // needs no child anyway.
  if (job.root) {
    const OpenedEntry entry = ProbeBeneath(job.root->get(), job.relative);
    if (entry.kind == EntryKind::kRegular) job.owner = entry.st.st_uid;
  }
  waiting_.Push(std::move(job));
  StartMore();
  return true;
}

void VerifyQueue::DropWatch(const std::string& watch) {
  waiting_.EraseIf([&](const VerifyJob& job) { return job.watch == watch; });
}

void VerifyQueue::Reconfigure(std::size_t max_parallel, ChildLimits limits,
                              std::size_t max_queued) {
  max_parallel_ = std::max<std::size_t>(max_parallel, 1);
  limits_ = limits;
  max_queued_ = max_queued;
  // A warm verifier keeps the limits it started with: the ones started before go.
  std::vector<Warm*> stale;
  for (auto& [id, warm] : warms_)
    if (warm->limits != limits) stale.push_back(warm.get());
  for (Warm* warm : stale) RetireWarm(warm);
  StartSpares();
  StartMore();
}

void VerifyQueue::StartMore() {
  if (starting_) return;  // a job finished inside Start(): the loop below goes on
  starting_ = true;
  while (!shutting_down_ && running_.size() < max_parallel_ && !waiting_.empty()) {
    Start(*waiting_.Pop());
  }
  starting_ = false;
}

void VerifyQueue::Start(VerifyJob job) {
  auto owned = std::make_unique<Child>();
  Child* child = owned.get();
  child->queue = this;
  child->job = std::move(job);
  child->started = std::chrono::steady_clock::now();
  running_.emplace(child, std::move(owned));

  // Opened now, by the daemon, beneath the watch root: the child gets this
  // one descriptor and could not open anything itself.
  OpenedEntry file = child->job.root ? OpenBeneath(child->job.root->get(), child->job.relative)
                                     : OpenRegularFile(child->job.path);
  if (file.kind != EntryKind::kRegular) {
    child->settled = UnopenedResult(child->job.path, file, child->job.options.level);
    child->exited = child->out_done = child->err_done = true;
    MaybeFinish(child);
    return;
  }
  child->outcome.file_bytes = static_cast<std::uint64_t>(file.st.st_size);
  child->file_owner = file.st.st_uid;
  child->file = std::move(file.fd);

  // The first look reads the file: on the thread pool, like scans, so a slow
  // filesystem never stalls the loop.
  child->first_look.data = child;
  int rc = uv_queue_work(
      loop_, &child->first_look,
      [](uv_work_t* work) {
        Child* c = static_cast<Child*>(work->data);
        c->first_verdict = FirstLook(c->file.get(), c->job.path, c->job.options);
      },
      [](uv_work_t* work, int) {
        Child* c = static_cast<Child*>(work->data);
        c->queue->AfterFirstLook(c);
      });
  if (rc != 0) AfterFirstLook(child);  // no thread pool: the child does all of it
}

void VerifyQueue::AfterFirstLook(Child* child) {
  if (child->first_verdict || shutting_down_) {
    if (child->first_verdict) {
      child->settled = std::move(child->first_verdict);
      child->settled->elapsed_ms = std::chrono::duration<double, std::milli>(
                                       std::chrono::steady_clock::now() - child->started)
                                       .count();
    } else {
      child->abandoned = true;
    }
    child->file.reset();
    child->exited = child->out_done = child->err_done = true;
    MaybeFinish(child);
    return;
  }
  if (!RunInWarm(child) && !ForkInZygote(child)) SpawnChild(child);
}

bool VerifyQueue::ForkInZygote(Child* child) {
  if (!zygote_) return false;
  const std::uint64_t id = next_id_++;
  int read_ends[2];
  std::string error;
  const bool sent = HandOver(
      child,
      [&](const std::vector<std::string>& args, int out_fd, int err_fd) {
        return SendZygoteJob(zygote_->socket, id, args, child->file.get(), out_fd, err_fd, &error);
      },
      read_ends);
  if (!sent) return false;
  child->file.reset();  // the zygote's child has its own copy now
  child->zygote = zygote_;
  child->id = id;
  forked_[id] = child;
  WatchPipes(child, read_ends[0], read_ends[1]);
  return true;
}

// The job's stdout and stderr pipes, and its arguments after the executable and the
// subcommand: what a zygote's child and a warm verifier are both handed with the file.
bool VerifyQueue::HandOver(Child* child, const HandOverSend& send, int read_ends[2]) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return false;
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return false;
  }
  const bool sent = send(JobArgs(child), out[1], err[1]);
  close(out[1]);
  close(err[1]);
  if (!sent) {
    close(out[0]);
    close(err[0]);
    return false;
  }
  read_ends[0] = out[0];
  read_ends[1] = err[0];
  return true;
}

// What a zygote's child and a warm verifier are handed with the file: VerifierChildArgv()
// after the executable and the subcommand.
std::vector<std::string> VerifyQueue::JobArgs(const Child* child) const {
  std::vector<std::string> args =
      VerifierChildArgv(self_exe_, child->job.path, child->job.options, limits_);
  args.erase(args.begin(), args.begin() + 2);
  return args;
}

void VerifyQueue::WatchPipes(Child* child, int out_fd, int err_fd) {
  uv_pipe_init(loop_, &child->out, 0);
  uv_pipe_init(loop_, &child->err, 0);
  uv_pipe_open(&child->out, out_fd);
  uv_pipe_open(&child->err, err_fd);
  uv_timer_init(loop_, &child->timer);
  child->out.data = child->err.data = child->timer.data = child;
  child->open_handles = 3;
  child->pipes = true;
  WatchOutput(child);
}

void VerifyQueue::WatchTimeout(Child* child) {
  uv_timer_init(loop_, &child->timer);
  child->timer.data = child;
  child->open_handles = 1;
  StartTimeout(child);
}

void VerifyQueue::StartTimeout(Child* child) {
  auto timeout_ms = static_cast<std::uint64_t>(limits_.timeout_seconds * 1000.0);
  uv_timer_start(&child->timer, OnTimeout, std::max<std::uint64_t>(timeout_ms, 1), 0);
}

void VerifyQueue::SpawnChild(Child* child) {
  uv_pipe_init(loop_, &child->out, 0);
  uv_pipe_init(loop_, &child->err, 0);
  uv_timer_init(loop_, &child->timer);
  child->out.data = child->err.data = child->timer.data = child->process.data = child;
  child->open_handles = 3;
  child->pipes = true;

  uv_stdio_container_t stdio[4];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&child->out);
  stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&child->err);
  static_assert(kVerifierChildFd == 3, "the checkpoint is the child's fourth descriptor");
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = child->file.get();
  int rc = SpawnSelf(loop_, &child->process,
                     VerifierChildArgv(self_exe_, child->job.path, child->job.options, limits_),
                     stdio, 4, OnExit);
  child->file.reset();    // the child has its own copy now
  ++child->open_handles;  // the process handle must be closed even when spawn failed
  child->spawned = rc == 0;
  if (rc != 0) {
    child->exited = child->out_done = child->err_done = true;
    child->outcome.exit_code = 127;
    child->outcome.stderr_text = std::string("cannot spawn ") + self_exe_ + ": " + uv_strerror(rc);
    MaybeFinish(child);
    return;
  }
  WatchOutput(child);
}

void VerifyQueue::WatchOutput(Child* child) {
  auto on_read = [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    Child* c = static_cast<Child*>(stream->data);
    bool is_out = stream == reinterpret_cast<uv_stream_t*>(&c->out);
    if (nread > 0)
      KeepVerifierOutput(&c->outcome, is_out ? 0 : 1, buf->base, static_cast<std::size_t>(nread));
    delete[] buf->base;
    if (nread < 0) {  // UV_EOF, or an error: either way nothing more comes
      uv_read_stop(stream);
      (is_out ? c->out_done : c->err_done) = true;
      c->queue->MaybeFinish(c);
    }
  };
  uv_read_start(reinterpret_cast<uv_stream_t*>(&child->out), Allocate, on_read);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&child->err), Allocate, on_read);
  StartTimeout(child);
}

void VerifyQueue::OnExit(uv_process_t* process, int64_t exit_status, int term_signal) {
  Child* child = static_cast<Child*>(process->data);
  child->exited = true;
  child->outcome.exit_code = static_cast<int>(exit_status);
  child->outcome.term_signal = term_signal;
  child->queue->MaybeFinish(child);
}

void VerifyQueue::OnTimeout(uv_timer_t* timer) {
  Child* child = static_cast<Child*>(timer->data);
  if (child->exited) return;
  child->outcome.timed_out = true;
  if (child->spawned)
    uv_process_kill(&child->process, SIGKILL);
  else if (child->zygote && !child->zygote->lost)
    SendZygoteKill(child->zygote->socket, child->id);
}

void VerifyQueue::MaybeFinish(Child* child) {
  if (child->finished || !child->exited || !child->out_done || !child->err_done) return;
  child->finished = true;
  if (child->zygote) forked_.erase(child->id);
  if (child->warm) WarmJobDone(child);
  if (!child->settled) uv_timer_stop(&child->timer);
  child->outcome.elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - child->started)
          .count();
  if (child->zygote_died && !child->abandoned && !child->job.retried && !shutting_down_) {
    // The zygote was killed from outside (an OOM kill, an administrator): nothing
    // about this file says it is broken. Verified again, once, by the next zygote.
    child->job.retried = true;
    waiting_.PushFront(std::move(child->job));
  } else if (!child->abandoned) {
    VerifyResult result =
        child->settled
            ? *child->settled
            : ResultFromChild(child->job.path, child->job.options.level, child->outcome, limits_);
    done_(child->job, result);
  }
  if (child->settled) return Release(child);  // no handle was initialised
  auto on_close = [](uv_handle_t* handle) {
    Child* c = static_cast<Child*>(handle->data);
    if (--c->open_handles > 0) return;
    c->queue->Release(c);
  };
  if (child->pipes) {
    uv_close(reinterpret_cast<uv_handle_t*>(&child->out), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&child->err), on_close);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&child->timer), on_close);
  if (!child->zygote) uv_close(reinterpret_cast<uv_handle_t*>(&child->process), on_close);
}

void VerifyQueue::Release(Child* child) {
  running_.erase(child);  // frees the child
  StartMore();
  MaybeStopped();
}

// ---- the zygote ----------------------------------------------------------------

void VerifyQueue::StartZygote() {
  if (shutting_down_ || zygote_) return;
  int fds[2];
  std::string error;
  auto* zygote = new Zygote;
  ++zygotes_alive_;
  zygote->queue = this;
  zygote->started = std::chrono::steady_clock::now();
  zygote->process.data = zygote->poll.data = zygote;
  zygote->open_handles = 1;  // the process handle, even when spawn fails
  if (!ZygoteSocketPair(fds, &error)) {
    --zygotes_alive_;
    delete zygote;
    if (zygote_lost_) zygote_lost_(error, restart_backoff_ms_);
    uv_timer_start(
        restart_timer_, [](uv_timer_t* t) { static_cast<VerifyQueue*>(t->data)->StartZygote(); },
        restart_backoff_ms_, 0);
    return;
  }
  zygote->socket = fds[0];

  uv_stdio_container_t stdio[4];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_IGNORE;
  stdio[2].flags = UV_INHERIT_FD;  // its complaints reach the daemon's stderr (the journal)
  stdio[2].data.fd = STDERR_FILENO;
  static_assert(kZygoteSocketFd == 3, "the socket is the zygote's fourth descriptor");
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = fds[1];
  auto on_exit = [](uv_process_t* process, int64_t exit_status, int term_signal) {
    auto* z = static_cast<Zygote*>(process->data);
    z->exited = true;
    z->how = DescribeExit(exit_status, term_signal);
    z->queue->LoseZygote(z);
  };
  int rc = SpawnSelf(loop_, &zygote->process, {self_exe_, std::string(kVerifierZygoteCommand)},
                     stdio, 4, on_exit);
  close(fds[1]);
  if (rc != 0) {
    zygote->exited = true;
    zygote->how = std::string("cannot spawn ") + self_exe_ + " " +
                  std::string(kVerifierZygoteCommand) + ": " + uv_strerror(rc);
    LoseZygote(zygote);
    return;
  }
  uv_poll_init(loop_, &zygote->poll, zygote->socket);
  ++zygote->open_handles;
  zygote->polling = true;
  uv_poll_start(&zygote->poll, UV_READABLE, [](uv_poll_t* poll, int status, int) {
    auto* z = static_cast<Zygote*>(poll->data);
    if (status < 0) return z->queue->LoseZygote(z);
    z->queue->OnZygoteReport(z);
  });
  zygote_ = zygote;
  StartSpares();
}

void VerifyQueue::OnZygoteReport(Zygote* zygote) {
  if (DrainZygoteReports(zygote) < 0) LoseZygote(zygote);
}

int VerifyQueue::DrainZygoteReports(Zygote* zygote) {
  ZygoteReport report;
  int rc;
  while ((rc = ReadZygoteReport(zygote->socket, &report)) == 1) {
    HandleWarmZygoteReport(report);  // a warm verifier's exit; its job, if any, below
    auto it = forked_.find(report.id);
    if (it == forked_.end() || it->second->zygote != zygote) continue;
    Child* child = it->second;
    switch (report.kind) {
      case ZygoteReport::Kind::kStarted:
        continue;
      case ZygoteReport::Kind::kForkFailed:
        child->outcome.exit_code = 127;
        child->outcome.stderr_text =
            std::string("the verifier zygote cannot fork: ") + std::strerror(report.wait_status);
        break;
      case ZygoteReport::Kind::kExited:
        if (WIFEXITED(report.wait_status))
          child->outcome.exit_code = WEXITSTATUS(report.wait_status);
        if (WIFSIGNALED(report.wait_status))
          child->outcome.term_signal = WTERMSIG(report.wait_status);
        break;
    }
    child->exited = true;
    MaybeFinish(child);
  }
  return rc;
}

void VerifyQueue::LoseZygote(Zygote* zygote) {
  if (!zygote->lost) {
    zygote->lost = true;
    if (zygote_ == zygote) zygote_ = nullptr;
    // Exits it reported before it went count as reported.
    if (zygote->polling) DrainZygoteReports(zygote);
    LoseWarms(zygote);  // they die with it too
    // Its children die with it (PR_SET_PDEATHSIG): their exits will never be reported.
    std::vector<Child*> orphans;
    for (auto& [id, child] : forked_)
      if (child->zygote == zygote && !child->exited) orphans.push_back(child);
    // Nor is their output waited for: one stopped before it could ask for that signal
    // would hold its pipes open for ever.
    for (Child* child : orphans) {
      child->zygote_died = true;
      child->exited = child->out_done = child->err_done = true;
      child->outcome.term_signal = SIGKILL;
      if (child->pipes) {
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&child->out));
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&child->err));
      }
      MaybeFinish(child);
    }
    if (zygote->polling) {
      zygote->polling = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&zygote->poll), OnZygoteHandleClosed);
    } else if (zygote->socket >= 0) {
      close(zygote->socket);
      zygote->socket = -1;
    }
    if (!shutting_down_) {
      const bool stable = std::chrono::steady_clock::now() - zygote->started >= kZygoteStable;
      if (stable) restart_backoff_ms_ = kZygoteRestartDelayMs;
      zygote->restart_ms = stable ? 0 : restart_backoff_ms_;
      if (!stable)
        restart_backoff_ms_ = std::min(restart_backoff_ms_ * 2, kZygoteMaxRestartDelayMs);
      zygote->unexpected = true;
      uv_timer_start(
          restart_timer_, [](uv_timer_t* t) { static_cast<VerifyQueue*>(t->data)->StartZygote(); },
          zygote->restart_ms, 0);
    }
  }
  if (!zygote->exited) {
    uv_process_kill(&zygote->process, SIGKILL);  // its exit callback comes back here
    return;
  }
  if (zygote->process_closing) return;
  zygote->process_closing = true;
  if (zygote->unexpected && zygote_lost_) zygote_lost_(zygote->how, zygote->restart_ms);
  uv_close(reinterpret_cast<uv_handle_t*>(&zygote->process), OnZygoteHandleClosed);
}

void VerifyQueue::OnZygoteHandleClosed(uv_handle_t* handle) {
  auto* z = static_cast<Zygote*>(handle->data);
  if (handle == reinterpret_cast<uv_handle_t*>(&z->poll)) {
    close(z->socket);  // after the poll handle: libuv must not watch a closed descriptor
    z->socket = -1;
  }
  if (--z->open_handles > 0) return;
  VerifyQueue* queue = z->queue;
  delete z;
  --queue->zygotes_alive_;
  queue->MaybeStopped();
}

void VerifyQueue::MaybeStopped() {
  if (!shutting_down_ || !stopped_ || !running_.empty()) return;
  if (zygote_) LoseZygote(zygote_);
  if (!warms_.empty() || zygotes_alive_ > 0 || !restart_timer_) return;
  uv_close(reinterpret_cast<uv_handle_t*>(restart_timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  restart_timer_ = nullptr;
  if (grace_timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(grace_timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    grace_timer_ = nullptr;
  }
  auto stopped = std::move(stopped_);
  stopped_ = nullptr;
  stopped();
}

void VerifyQueue::Shutdown(std::uint64_t grace_ms, std::function<void()> stopped) {
  shutting_down_ = true;
  waiting_.EraseIf([](const VerifyJob&) { return true; });
  uv_timer_stop(restart_timer_);
  stopped_ = std::move(stopped);
  if (running_.empty()) return MaybeStopped();
  grace_timer_ = new uv_timer_t;
  uv_timer_init(loop_, grace_timer_);
  grace_timer_->data = this;
  uv_timer_start(
      grace_timer_,
      [](uv_timer_t* timer) {
        auto* queue = static_cast<VerifyQueue*>(timer->data);
        for (auto& [raw, child] : queue->running_) {
          if (child->exited) continue;
          child->abandoned = true;
          if (child->spawned) uv_process_kill(&child->process, SIGKILL);
        }
        if (queue->zygote_) queue->LoseZygote(queue->zygote_);  // its children die with it
      },
      grace_ms, 0);
}

}  // namespace ckptwatch
