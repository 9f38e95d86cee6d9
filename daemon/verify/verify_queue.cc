#include "verify_queue.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "open_beneath.h"

namespace ckptwatch {

struct VerifyQueue::Child {
  VerifyQueue* queue = nullptr;
  VerifyJob job;
  uv_process_t process{};
  uv_pipe_t out{};
  uv_pipe_t err{};
  uv_timer_t timer{};
  ChildOutcome outcome;
  std::optional<VerifyResult> unopened;  // the file was not opened: no child ran
  std::chrono::steady_clock::time_point started;
  int open_handles = 0;
  bool exited = false;
  bool out_done = false;
  bool err_done = false;
  bool finished = false;
  bool abandoned = false;  // killed by Shutdown: no verdict is reported
};

namespace {

constexpr std::size_t kMaxStdoutBytes = 1u << 20;
constexpr std::size_t kMaxStderrBytes = 16u << 10;

void Allocate(uv_handle_t*, std::size_t suggested, uv_buf_t* buf) {
  buf->base = new char[suggested];
  buf->len = suggested;
}

}  // namespace

VerifyQueue::VerifyQueue(uv_loop_t* loop, std::string self_exe, std::size_t max_parallel,
                         ChildLimits limits, std::size_t max_queued, Done done)
    : loop_(loop),
      self_exe_(std::move(self_exe)),
      max_parallel_(std::max<std::size_t>(max_parallel, 1)),
      limits_(limits),
      max_queued_(max_queued),
      done_(std::move(done)) {}

VerifyQueue::~VerifyQueue() = default;

bool VerifyQueue::IsRunning(const std::string& path) const {
  for (const auto& [raw, child] : running_)
    if (child->job.path == path) return true;
  return false;
}

bool VerifyQueue::Enqueue(VerifyJob job) {
  if (shutting_down_) return false;
  for (VerifyJob& waiting : waiting_) {
    if (waiting.path == job.path) {
      waiting = std::move(job);
      return true;
    }
  }
  if (waiting_.size() >= max_queued_) return false;
  waiting_.push_back(std::move(job));
  StartMore();
  return true;
}

void VerifyQueue::DropWatch(const std::string& watch) {
  std::erase_if(waiting_, [&](const VerifyJob& job) { return job.watch == watch; });
}

void VerifyQueue::Reconfigure(std::size_t max_parallel, ChildLimits limits,
                              std::size_t max_queued) {
  max_parallel_ = std::max<std::size_t>(max_parallel, 1);
  limits_ = limits;
  max_queued_ = max_queued;
  StartMore();
}

void VerifyQueue::StartMore() {
  while (!shutting_down_ && running_.size() < max_parallel_ && !waiting_.empty()) {
    VerifyJob job = std::move(waiting_.front());
    waiting_.pop_front();
    Start(std::move(job));
  }
}

void VerifyQueue::Start(VerifyJob job) {
  auto owned = std::make_unique<Child>();
  Child* child = owned.get();
  child->queue = this;
  child->job = std::move(job);
  child->started = std::chrono::steady_clock::now();

  // Opened now, by the daemon, beneath the watch root: the child gets this
  // one descriptor and could not open anything itself.
  OpenedEntry file = child->job.root ? OpenBeneath(child->job.root->get(), child->job.relative)
                                     : OpenRegularFile(child->job.path);
  if (file.kind != EntryKind::kRegular) {
    running_.emplace(child, std::move(owned));
    child->unopened = UnopenedResult(child->job.path, file, child->job.options.level);
    child->exited = child->out_done = child->err_done = true;
    MaybeFinish(child);
    return;
  }
  child->outcome.file_bytes = static_cast<std::uint64_t>(file.st.st_size);

  std::vector<std::string> argv_strings =
      VerifierChildArgv(self_exe_, child->job.path, child->job.options, limits_);
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = VerifierChildEnvironment();
  std::vector<char*> env;
  for (std::string& s : env_strings) env.push_back(s.data());
  env.push_back(nullptr);

  uv_pipe_init(loop_, &child->out, 0);
  uv_pipe_init(loop_, &child->err, 0);
  uv_timer_init(loop_, &child->timer);
  child->out.data = child->err.data = child->timer.data = child->process.data = child;
  child->open_handles = 3;

  uv_stdio_container_t stdio[4];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&child->out);
  stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&child->err);
  static_assert(kVerifierChildFd == 3, "the checkpoint is the child's fourth descriptor");
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = file.fd.get();
  uv_process_options_t options{};
  options.exit_cb = OnExit;
  options.file = self_exe_.c_str();
  options.args = argv.data();
  options.env = env.data();
  options.stdio_count = 4;
  options.stdio = stdio;

  running_.emplace(child, std::move(owned));
  int rc = uv_spawn(loop_, &child->process, &options);
  file.fd.reset();  // the child has its own copy now
  ++child->open_handles;  // the process handle must be closed even when spawn failed
  if (rc != 0) {
    child->exited = child->out_done = child->err_done = true;
    child->outcome.exit_code = 127;
    child->outcome.stderr_text = std::string("cannot spawn ") + self_exe_ + ": " + uv_strerror(rc);
    MaybeFinish(child);
    return;
  }

  auto on_read = [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    Child* c = static_cast<Child*>(stream->data);
    bool is_out = stream == reinterpret_cast<uv_stream_t*>(&c->out);
    std::string& sink = is_out ? c->outcome.stdout_text : c->outcome.stderr_text;
    std::size_t cap = is_out ? kMaxStdoutBytes : kMaxStderrBytes;
    if (nread > 0 && sink.size() < cap) sink.append(buf->base, static_cast<std::size_t>(nread));
    delete[] buf->base;
    if (nread < 0) {  // UV_EOF, or an error: either way nothing more comes
      uv_read_stop(stream);
      (is_out ? c->out_done : c->err_done) = true;
      c->queue->MaybeFinish(c);
    }
  };
  uv_read_start(reinterpret_cast<uv_stream_t*>(&child->out), Allocate, on_read);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&child->err), Allocate, on_read);
  auto timeout_ms = static_cast<std::uint64_t>(limits_.timeout_seconds * 1000.0);
  uv_timer_start(&child->timer, OnTimeout, std::max<std::uint64_t>(timeout_ms, 1), 0);
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
  uv_process_kill(&child->process, SIGKILL);
}

void VerifyQueue::MaybeFinish(Child* child) {
  if (child->finished || !child->exited || !child->out_done || !child->err_done) return;
  child->finished = true;
  if (!child->unopened) uv_timer_stop(&child->timer);
  child->outcome.elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - child->started)
          .count();
  if (!child->abandoned) {
    VerifyResult result =
        child->unopened ? *child->unopened
                        : ResultFromChild(child->job.path, child->job.options.level, child->outcome, limits_);
    done_(child->job, result);
  }
  if (child->unopened) {
    // No handle was initialised: nothing to close. (Start() runs inside
    // StartMore()'s loop, which goes on to the next job.)
    running_.erase(child);
    return;
  }
  auto on_close = [](uv_handle_t* handle) {
    Child* c = static_cast<Child*>(handle->data);
    if (--c->open_handles > 0) return;
    VerifyQueue* queue = c->queue;
    queue->running_.erase(c);  // frees the child
    queue->StartMore();
    if (queue->shutting_down_ && queue->running_.empty() && queue->stopped_) {
      auto stopped = std::move(queue->stopped_);
      queue->stopped_ = nullptr;
      if (queue->grace_timer_) {
        uv_close(reinterpret_cast<uv_handle_t*>(queue->grace_timer_),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        queue->grace_timer_ = nullptr;
      }
      stopped();
    }
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&child->out), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&child->err), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&child->timer), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&child->process), on_close);
}

void VerifyQueue::Shutdown(std::uint64_t grace_ms, std::function<void()> stopped) {
  shutting_down_ = true;
  waiting_.clear();
  if (running_.empty()) {
    stopped();
    return;
  }
  stopped_ = std::move(stopped);
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
          uv_process_kill(&child->process, SIGKILL);
        }
      },
      grace_ms, 0);
}

}  // namespace ckptwatch
