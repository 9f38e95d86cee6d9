// VerifyQueue's warm verifiers (warm_verifier.h): one per owner and job at a time, forked by the
// zygote ahead of need (spares, bound to the owner of their first file; a successor some files
// before its predecessor retires) or on demand, fed files over their channel, retired after
// `warm_max_files_` files, an idle `warm_idle_ms_`, a verdict they could not give cleanly (a
// crash, a timeout, a parse error: the verifier says it retires), or new limits. A verifier never
// gets a file of an owner other than the one it was bound to, and one that reports more than one
// is killed.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <string>
#include <utility>

#include "verify/engine/verifier_zygote.h"
#include "verify/engine/verify_queue.h"
#include "verify/engine/verify_queue_internal.h"

namespace ckptwatch {

bool VerifyQueue::Current(const Warm& warm) const {
  return warm.zygote == zygote_ && warm.limits == limits_;
}

void VerifyQueue::ConfigureWarm(std::size_t max_files, std::uint64_t idle_ms) {
  warm_max_files_ = max_files;
  warm_idle_ms_ = std::max<std::uint64_t>(idle_ms, 1);
  std::vector<Warm*> all;
  for (auto& [id, warm] : warms_) all.push_back(warm.get());
  for (Warm* warm : all) RetireWarm(warm);
  if (warm_max_files_ == 0) {
    if (auto ready = std::exchange(warm_ready_, nullptr)) ready();
  }
  StartSpares();
}

void VerifyQueue::WhenWarm(std::function<void()> ready) {
  for (auto& [id, warm] : warms_)
    if (warm->warmed && !warm->retiring) return ready();
  if (warm_max_files_ == 0) return ready();
  warm_ready_ = std::move(ready);
}

bool VerifyQueue::RunInWarm(Child* child) {
  if (!zygote_ || warm_max_files_ == 0 || shutting_down_) return false;
  Warm* warm = nullptr;
  for (auto& [id, candidate] : warms_) {
    Warm* w = candidate.get();
    if (w->bound && !w->retiring && !w->busy && w->owner == child->file_owner && Current(*w)) {
      warm = w;
      break;
    }
  }
  if (!warm) warm = TakeSpare(child->file_owner);
  if (!warm) {
    TrimWarms();
    warm = StartWarm(child->file_owner);
    if (!warm) return false;
  }
  StartSpares();  // for the next owner, or this one's next verifier
  // Its first job brings the pipes it writes to from then on; the others, the file alone.
  int theirs[2] = {-1, -1};
  const bool first = warm->output[0] < 0;
  std::string error;
  bool sent = !first || OpenWarmOutput(warm, theirs);
  if (sent)
    sent = SendWarmJob(warm->channel, next_id_++, JobArgs(child), child->file.get(), theirs[0],
                       theirs[1], first ? WarmOutput::kKeep : WarmOutput::kKept, &error);
  for (int fd : theirs)
    if (fd >= 0) close(fd);
  if (!sent) {
    RetireWarm(warm);  // a full or broken channel: this one forks a one-shot child instead
    return false;
  }
  child->file.reset();  // the verifier has its own copy now
  ++warm->files;
  // Its successor is forked a few files before it retires, so that in a burst (files a
  // millisecond apart) the owner's next file does not wait for a fork and a warm-up.
  if (warm->files + kSuccessorLead == warm_max_files_) StartSuccessor(warm);
  warm->busy = child;
  uv_timer_stop(&warm->idle);
  child->warm = warm;
  child->zygote = warm->zygote;
  child->id = warm->id;  // a timeout kills the verifier; its exit report ends the job
  forked_[warm->id] = child;
  WatchTimeout(child);
  return true;
}

bool VerifyQueue::OpenWarmOutput(Warm* warm, int theirs[2]) {
  // Only our read ends are non-blocking: a verifier writing more than a pipe holds waits.
  int pipes[2][2] = {{-1, -1}, {-1, -1}};
  for (int i = 0; i < 2; ++i) {
    if (pipe2(pipes[i], O_CLOEXEC) != 0 ||
        fcntl(pipes[i][0], F_SETFL, fcntl(pipes[i][0], F_GETFL) | O_NONBLOCK) != 0) {
      for (auto& pipe : pipes)
        for (int fd : pipe)
          if (fd >= 0) close(fd);
      return false;
    }
  }
  for (int i = 0; i < 2; ++i) {
    warm->output[i] = pipes[i][0];
    theirs[i] = pipes[i][1];
    warm->output_poll[i].data = warm;
    uv_poll_init(loop_, &warm->output_poll[i], warm->output[i]);
    ++warm->open_handles;
    auto on_output = [](uv_poll_t* poll, int status, int) {
      auto* w = static_cast<Warm*>(poll->data);
      const int which = poll == &w->output_poll[0] ? 0 : 1;
      if (status < 0 || !w->queue->ReadWarmOutput(w, which)) uv_poll_stop(poll);
    };
    uv_poll_start(&warm->output_poll[i], UV_READABLE, on_output);
  }
  return true;
}

// Reads what is there now. Its end of file (the verifier gone) stops the poll; its exit report
// ends the job. Output with no job to serve is a verifier out of step: killed.
bool VerifyQueue::ReadWarmOutput(Warm* warm, int which) {
  Child* child = warm->busy && !warm->busy->finished ? warm->busy : nullptr;
  char buffer[16384];
  for (;;) {
    const ssize_t n = read(warm->output[which], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0) return false;
    if (!child) {
      warm->retiring = true;
      if (!warm->gone && !warm->zygote->lost) SendZygoteKill(warm->zygote->socket, warm->id);
      return false;
    }
    KeepVerifierOutput(&child->outcome, which, buffer, static_cast<std::size_t>(n));
  }
}

void VerifyQueue::DrainWarmOutput(Warm* warm, Child* child) {
  if (warm->busy == child && warm->output[0] >= 0)
    for (int which : {0, 1}) ReadWarmOutput(warm, which);
  child->out_done = child->err_done = true;
}

VerifyQueue::Warm* VerifyQueue::TakeSpare(uid_t owner) {
  for (auto& [id, candidate] : warms_) {
    Warm* w = candidate.get();
    if (!w->bound && !w->retiring && !w->busy && Current(*w)) {
      w->owner = owner;
      w->bound = true;
      return w;
    }
  }
  return nullptr;
}

void VerifyQueue::StartSpares() {
  if (!zygote_ || zygote_->lost || warm_max_files_ == 0 || shutting_down_) return;
  std::size_t spares = 0;
  for (auto& [id, warm] : warms_) {
    if (warm->bound || warm->retiring) continue;
    if (Current(*warm) && spares < max_parallel_)
      ++spares;
    else
      RetireWarm(warm.get());  // of a lost zygote, with old limits, or one too many
  }
  // No idle timer: a spare waits for the next owner, however long.
  for (; spares < max_parallel_; ++spares)
    if (!StartWarm(std::nullopt)) break;
}

VerifyQueue::Warm* VerifyQueue::StartWarm(std::optional<uid_t> owner) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return nullptr;
  const std::uint64_t id = next_id_++;
  std::string error;
  const bool sent = SendZygoteStartWarm(
      zygote_->socket, id,
      WarmVerifierArgs(limits_.timeout_seconds, limits_.memory_bytes, warm_max_files_), fds[1],
      &error);
  close(fds[1]);
  if (!sent) {
    close(fds[0]);
    return nullptr;
  }
  auto owned = std::make_unique<Warm>();
  Warm* warm = owned.get();
  warm->queue = this;
  warm->zygote = zygote_;
  warm->id = id;
  warm->owner = owner.value_or(0);
  warm->bound = owner.has_value();
  warm->limits = limits_;
  warm->channel = fds[0];
  warm->poll.data = warm->idle.data = warm;
  uv_poll_init(loop_, &warm->poll, warm->channel);
  uv_timer_init(loop_, &warm->idle);
  warm->open_handles = 2;
  uv_poll_start(&warm->poll, UV_READABLE, [](uv_poll_t* poll, int status, int) {
    auto* w = static_cast<Warm*>(poll->data);
    if (status < 0) {
      uv_poll_stop(poll);  // its exit report (from the zygote) follows
      return;
    }
    w->queue->OnWarmReadable(w);
  });
  warms_.emplace(id, std::move(owned));
  return warm;
}

// Keeps idle verifiers to about as many as may run at once: the one idle longest goes first.
void VerifyQueue::TrimWarms() {
  std::size_t alive = 0;
  for (auto& [id, warm] : warms_) alive += warm->retiring || !warm->bound ? 0 : 1;
  for (auto& [id, warm] : warms_) {  // ordered by id: oldest first
    if (alive < max_parallel_ + 1) break;
    if (warm->retiring || warm->busy || !warm->bound) continue;
    RetireWarm(warm.get());
    --alive;
  }
}

void VerifyQueue::OnWarmReadable(Warm* warm) {
  WarmReport report;
  int rc;
  while ((rc = ReadWarmReport(warm->channel, &report)) == 1) OnWarmReport(warm, report);
  // End of file: it left (retired, or died); the zygote reports how. A malformed report: the
  // verifier is not to be trusted with another file.
  if (rc < 0 && !warm->closing) {
    uv_poll_stop(&warm->poll);
    if (!warm->gone && !warm->zygote->lost) SendZygoteKill(warm->zygote->socket, warm->id);
    warm->retiring = true;
  }
}

void VerifyQueue::OnWarmReport(Warm* warm, const WarmReport& report) {
  if (report.job == kWarmReadyJob && report.uid_count == 0 && !warm->warmed) {
    warm->warmed = true;
    if (auto ready = std::exchange(warm_ready_, nullptr)) ready();
    return;
  }
  Child* child = warm->busy;
  const bool one_owner =
      report.uid_count == 1 && report.uids.size() == 1 && report.uids[0] == warm->owner;
  if (!one_owner) {
    std::string uids;
    for (uid_t uid : report.uids) {
      if (!uids.empty()) uids += ',';
      uids += std::to_string(uid);
    }
    const std::string message =
        "warm verifier " + std::to_string(report.pid) + " for uid " + std::to_string(warm->owner) +
        " reported files of " + std::to_string(report.uid_count) + " owners (uids " + uids +
        "); killed";
    if (alarm_) alarm_(message);
    warm->retiring = true;
    if (!warm->gone && !warm->zygote->lost) SendZygoteKill(warm->zygote->socket, warm->id);
    if (child) child->outcome.stderr_text += "\nthe daemon killed the verifier: " + message + "\n";
    return;  // its exit report ends the job: verifier_crashed
  }
  if (report.retiring) warm->retiring = true;
  if (!child || child->exited) return;
  child->job.verifier_pid = report.pid;
  child->job.verifier_uids = report.uids;
  child->warm_reported = true;
  child->exited = true;
  DrainWarmOutput(warm, child);  // written before the report was sent
  MaybeFinish(child);
}

// From DrainZygoteReports(): the zygote reports on a warm verifier. Its job (if it had one that
// it did not report done) is then ended by the caller as a one-shot child's would be.
bool VerifyQueue::HandleWarmZygoteReport(const ZygoteReport& report) {
  auto it = warms_.find(report.id);
  if (it == warms_.end()) return false;
  Warm* warm = it->second.get();
  if (report.kind == ZygoteReport::Kind::kStarted) {
    warm->pid = report.pid;
    return true;
  }
  warm->gone = true;
  // It reported before it exited: what is in its channel counts.
  if (!warm->closing) OnWarmReadable(warm);
  // A job it did not report done ends with its exit (the caller): what it wrote before it died
  // (a crash's last words) is all in its pipes now.
  if (Child* child = warm->busy; child && !child->finished) DrainWarmOutput(warm, child);
  RetireWarm(warm);
  if (warm->closing && warm->open_handles == 0) {
    warms_.erase(warm->id);  // its handles closed before its exit was reported
    MaybeStopped();
  }
  return true;
}

void VerifyQueue::WarmJobDone(Child* child) {
  Warm* warm = child->warm;
  child->warm = nullptr;
  warm->busy = nullptr;
  const bool clean = child->warm_reported && !child->outcome.timed_out &&
                     child->outcome.term_signal == 0 && child->outcome.exit_code == 0;
  if (!clean || warm->retiring || warm->gone || warm->files >= warm_max_files_ || shutting_down_) {
    // One that served its max_files cleanly is replaced now, not when its owner's next file
    // comes: that file would wait for the fork and the verifier's start (bench/latency_bench.py,
    // paced: a p99 of 10.7 ms with that wait every 64 files, 2.3 ms without; the baseline 2.2).
    // Not by the spare, which may have waited for seconds: its first file takes 3-4.5 ms, a
    // successor's that warmed up just before 1.4-2.4 ms (a page touched long ago costs this
    // VM's hypervisor a fault again). The successor is a fresh fork of the zygote, as any other.
    const bool worn_out = clean && !warm->gone && warm->files >= warm_max_files_;
    RetireWarm(warm);
    if (worn_out) StartSuccessor(warm);  // unless one was started kSuccessorLead files ago
    return;
  }
  StartIdleTimer(warm);
}

// A bound verifier for `worn`'s owner that has taken no file yet, unless one is waiting.
void VerifyQueue::StartSuccessor(const Warm* worn) {
  if (shutting_down_ || !zygote_ || zygote_->lost || !Current(*worn)) return;
  for (auto& [id, warm] : warms_)
    if (warm.get() != worn && warm->bound && warm->owner == worn->owner && !warm->retiring &&
        warm->files == 0)
      return;
  if (Warm* successor = StartWarm(worn->owner)) StartIdleTimer(successor);
}

void VerifyQueue::StartIdleTimer(Warm* warm) {
  uv_timer_start(
      &warm->idle, [](uv_timer_t* t) {
        auto* w = static_cast<Warm*>(t->data);
        w->queue->RetireWarm(w);
      },
      warm_idle_ms_, 0);
}

// Takes no more jobs; once its job (if any) is done, its channel closes — which ends it, when
// it is still alive — and it is forgotten once the zygote reported its exit.
void VerifyQueue::RetireWarm(Warm* warm) {
  warm->retiring = true;
  if (warm->busy || warm->closing) return;
  warm->closing = true;
  uv_timer_stop(&warm->idle);
  uv_close(reinterpret_cast<uv_handle_t*>(&warm->idle), OnWarmHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&warm->poll), OnWarmHandleClosed);
  if (warm->output[0] >= 0)
    for (uv_poll_t& poll : warm->output_poll)
      uv_close(reinterpret_cast<uv_handle_t*>(&poll), OnWarmHandleClosed);
}

void VerifyQueue::OnWarmHandleClosed(uv_handle_t* handle) {
  auto* warm = static_cast<Warm*>(handle->data);
  VerifyQueue* queue = warm->queue;
  if (handle == reinterpret_cast<uv_handle_t*>(&warm->poll)) {
    close(warm->channel);  // after the poll handle: libuv must not watch a closed descriptor
    warm->channel = -1;
  }
  for (int which : {0, 1}) {
    if (handle == reinterpret_cast<uv_handle_t*>(&warm->output_poll[which])) {
      close(warm->output[which]);
      warm->output[which] = -1;
    }
  }
  if (--warm->open_handles > 0) return;
  if (!warm->gone) return;  // freed when its exit is reported (LoseWarms at the latest)
  queue->warms_.erase(warm->id);
  queue->MaybeStopped();
}

// Its zygote is gone: so are its warm verifiers (PR_SET_PDEATHSIG).
void VerifyQueue::LoseWarms(Zygote* zygote) {
  std::vector<Warm*> lost;
  for (auto& [id, warm] : warms_)
    if (warm->zygote == zygote) lost.push_back(warm.get());
  for (Warm* warm : lost) {
    warm->gone = true;
    if (warm->closing && warm->open_handles == 0) {
      warms_.erase(warm->id);
      continue;
    }
    RetireWarm(warm);
  }
}

}  // namespace ckptwatch
