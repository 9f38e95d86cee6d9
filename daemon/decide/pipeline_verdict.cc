// Verdicts (supersede, second look, outcome) and watch problems.
#include <algorithm>
#include <cstdio>

#include "outcome.h"
#include "pipeline.h"
#include "pipeline_watch.h"
#include "units.h"
#include "verifier.h"

namespace ckptwatch {
namespace {

using std::chrono::milliseconds;

// How long an empty file gets to start growing before it is a failed save.
constexpr milliseconds kEmptyRecheck{2000};
// How often a watch re-checks that its writer can create files there.
constexpr std::chrono::seconds kWritableCheckEvery{30};

std::string HumanDuration(double seconds) {
  char text[32];
  if (seconds < 120) std::snprintf(text, sizeof text, "%.0fs", seconds);
  else if (seconds < 7200) std::snprintf(text, sizeof text, "%.0fm", seconds / 60);
  else std::snprintf(text, sizeof text, "%.1fh", seconds / 3600);
  return text;
}

std::string Basename(const std::string& path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

void Pipeline::OnVerified(const VerifyJob& job, const VerifyResult& unbounded) {
  // Verdicts made here (not_regular, not_found) are bounded like the child's.
  VerifyResult result = unbounded;
  BoundResult(&result);
  Watch* w = FindWatch(job.watch);
  reporter_.SetQueueLength(verifier_.waiting());
  if (!w || stopping_) return;
  if (w->settle->Finish(job.path)) {
    // Written again while we read it: the newer write gets its own verdict.
    Log(LogLevel::kDebug, "verify_superseded", {{"watch", job.watch}, {"path", job.path}},
        "file was written again during verification; verifying the new write");
    return;
  }
  const Clock::time_point now = env_.Now();
  Watch::Dispatched dispatched = w->dispatched[job.path];
  w->dispatched.erase(job.path);
  // *.bin is a checkpoint only when its content says so (pytorch_model.bin); other programs'
  // .bin files are not failed saves.
  if (IsQuietlySkipped(job.path, result)) {
    if (dispatched.stat) w->reported[job.path] = *dispatched.stat;
    Log(LogLevel::kDebug, "not_checkpoint", {{"watch", job.watch}, {"path", job.path}, {"format", result.format}},
        "skipped: " + result.reason);
    return;
  }
  // A broken verdict on a file that has changed since its write event — the
  // trainer's next save already truncating and rewriting it — describes a
  // save under way, not the one that completed: its own close will bring a
  // verdict. (The child catches changes during its read; this catches a
  // verification that ran entirely inside the next save's quiet moments.)
  if (!result.ok()) {
    std::optional<FileStat> current = StatNow(*w, job.path);
    const bool changed = current && (!dispatched.stat || !(*current == *dispatched.stat) ||
                                     current->mtime_ns > dispatched.event_ns);
    if (changed) {
      Log(LogLevel::kDebug, "verify_superseded",
          {{"watch", job.watch}, {"path", job.path}, {"verdict", std::string(VerdictName(result.verdict))}},
          "file changed after its write event (the next save is under way); waiting for that save");
      w->last_event_ns[job.path] = env_.RealtimeNs();
      w->settle->Touch(job.path, now + config_.verify.timeout - w->config.settle);
      return;
    }
  }
  // A writer that still has the file open gets one more look: after
  // verify.timeout for in_progress; after a moment for an empty file, which
  // is also what a save looks like between its O_TRUNC and its first write.
  // Only a state that outlives the second look is a failed save.
  if ((result.verdict == Verdict::kInProgress || result.verdict == Verdict::kEmpty) &&
      w->in_progress_seen[job.path]++ == 0) {
    const milliseconds delay = result.verdict == Verdict::kEmpty
                                   ? std::min<milliseconds>(config_.verify.timeout, kEmptyRecheck)
                                   : config_.verify.timeout;
    Log(LogLevel::kWarn, "verify_deferred",
        {{"watch", job.watch}, {"path", job.path}, {"verdict", std::string(VerdictName(result.verdict))}},
        result.reason + "; checking again in " + FormatDuration(delay));
    w->settle->Touch(job.path, now + delay - w->config.settle);
    return;
  }
  const bool stuck = w->in_progress_seen.erase(job.path) > 0 &&
                     (result.verdict == Verdict::kInProgress || result.verdict == Verdict::kEmpty);
  if (dispatched.stat) w->reported[job.path] = *dispatched.stat;
  Report(*w, job, result, stuck);
}

void Pipeline::Report(Watch& w, const VerifyJob& job, const VerifyResult& result, bool stuck) {
  OutcomeInput input;
  input.watch = job.watch;
  input.stuck = stuck;
  input.min_free = w.config.min_free;
  // The file's own filesystem: under a recursive watch it may be another mount.
  FsSpace space;
  const std::string parent = job.path.substr(0, job.path.rfind('/'));
  if (env_.StatSpace(parent.empty() ? "/" : parent, &space)) input.space = space;
  if (result.ok()) {
    for (const Principal& reader : w.config.readers) {
      std::string why = env_.WhyCannotRead(job.path, reader);
      if (!why.empty()) input.unreadable += (input.unreadable.empty() ? "" : "; ") + why;
    }
    SetProblem(w, WatchProblem::kUnreadable, !input.unreadable.empty(), input.unreadable);
  }
  VerifyResult named = result;
  named.path = job.path;
  Outcome outcome = DecideOutcome(named, input);
  Log(outcome.level, "verify", std::move(outcome.fields), std::move(outcome.message));

  reporter_.Verified(job.watch, result.verdict, result.level, result.elapsed_ms / 1000.0, result.bytes);
  reporter_.SetLastCheckpointOk(job.watch, outcome.cause.empty());
  if (result.ok()) {
    ++w.ok_total;
    w.last_good_time = env_.UnixNow();
    w.last_good_bytes = result.bytes;
    w.last_good_path = job.path;
    reporter_.SetLastGood(job.watch, *w.last_good_time, result.bytes);
    if (w.stale) {
      w.stale->Ok(env_.Now());
      SetProblem(w, WatchProblem::kStale, false);
    }
  } else {
    ++w.failed_total;
  }
  if (!outcome.cause.empty()) reporter_.SaveFailed(job.watch, outcome.cause);
  CheckSpace(w);
}

// ---- problems ----------------------------------------------------------------

void Pipeline::SetProblem(Watch& w, WatchProblem problem, bool active, const std::string& reason) {
  reporter_.SetProblem(w.config.name, problem, active);
  const std::string name(WatchProblemName(problem));
  switch (w.problems.Set(name, active, reason)) {
    case ProblemSet::Change::kStarted:
      Log(problem == WatchProblem::kMissingDirectory ? LogLevel::kWarn : LogLevel::kError, "problem",
          {{"watch", w.config.name}, {"problem", name}, {"path", w.config.path}}, reason);
      break;
    case ProblemSet::Change::kCleared:
      Log(LogLevel::kInfo, "problem_cleared", {{"watch", w.config.name}, {"problem", name}, {"path", w.config.path}});
      break;
    case ProblemSet::Change::kNone:
      break;
  }
}

// The failure that leaves no file behind: the trainer cannot create one.
void Pipeline::CheckWritable(Watch& w) {
  w.next_writable_check = env_.Now() + kWritableCheckEvery;
  if (!w.config.writer || w.state != Watch::State::kActive) return;
  std::string why = env_.WhyCannotCreateIn(w.config.path, *w.config.writer);
  if (!why.empty()) why += ": its saves will fail with PermissionError [Errno 13]";
  SetProblem(w, WatchProblem::kNotWritable, !why.empty(), why);
}

void Pipeline::CheckSpace(Watch& w) {
  FsSpace space;
  if (w.state != Watch::State::kActive || !env_.StatSpace(w.config.path, &space)) return;
  reporter_.SetFilesystem(w.config.name, space.avail, space.size);
  std::string why = LowSpaceReason(space, w.config.min_free, w.last_good_bytes);
  SetProblem(w, WatchProblem::kLowSpace, !why.empty(), why);
}

void Pipeline::Summary(Watch& w) {
  std::vector<LogField> fields = {{"watch", w.config.name},
                                  {"state", w.state == Watch::State::kActive ? "active" : "missing"},
                                  {"ok", std::to_string(w.ok_total)},
                                  {"failed", std::to_string(w.failed_total)}};
  std::string msg;
  if (w.last_good_time) {
    double age = env_.UnixNow() - *w.last_good_time;
    fields.push_back({"last_good", w.last_good_path});
    fields.push_back({"last_good_age_s", std::to_string(static_cast<long long>(age))});
    fields.push_back({"last_good_bytes", std::to_string(w.last_good_bytes)});
    msg = "last good checkpoint " + Basename(w.last_good_path) + " (" + HumanBytes(w.last_good_bytes) +
          ") " + HumanDuration(age) + " ago";
  } else {
    msg = "no good checkpoint seen since start";
  }
  FsSpace space;
  if (env_.StatSpace(w.config.path, &space)) {
    fields.push_back({"avail_bytes", std::to_string(space.avail)});
    msg += "; " + HumanBytes(space.avail) + " free";
  }
  Log(LogLevel::kInfo, "summary", std::move(fields), msg);
}

}  // namespace ckptwatch
