// Verdicts: supersede, the second look, the outcome and its report (a repeat: repeat_limit.h).
#include <algorithm>

#include "config/units.h"
#include "decide/outcome.h"
#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"
#include "decide/repeat_limit.h"
#include "verify/verifier.h"

namespace ckptwatch {
namespace {

using std::chrono::milliseconds;

// How long an empty file gets to start growing before it is a failed save.
constexpr milliseconds kEmptyRecheck{2000};
// How long a writer that holds a file found broken, with no close seen, has to write again.
constexpr milliseconds kHeldOpenRecheck{2000};

}  // namespace

void Pipeline::OnVerified(const VerifyJob& job, const VerifyResult& unbounded) {
  // Verdicts made here (not_regular, not_found) are bounded like the child's.
  VerifyResult result = unbounded;
  BoundResult(&result);
  Watch* w = FindWatch(job.watch);
  if (w && !stopping_) Judge(*w, job, result);
  if (w && !stopping_) w->sets->Recheck(env_.Now());  // a set may have waited for this verdict
  if (!stopping_) DrainBlocked();  // a place in the verify queue is free
  reporter_.Report(QueueLengthChanged{QueueLength()});
}

// A rename is not a failed save: what waited under the old name is dropped
// (the new name's own write or directory event brings it back, under the
// name a loader will use), and verdicts already under way for it are
// dropped when they come. Deleting a name is not this: a checkpoint that
// vanishes before its verdict still says not_found.
void Pipeline::MovedAway(Watch& w, const std::string& from, const std::string& to) {
  w.settle->DropPendingUnder(from);
  const std::string prefix = from + "/";
  auto under = [&](const std::string& path) {
    return path == from || path.compare(0, prefix.size(), prefix) == 0;
  };
  for (const std::string& path : w.blocked) {
    if (!under(path)) continue;
    if (PathRecord* record = w.paths.Find(path)) record->blocked = false;
    w.paths.Tidy(path);
  }
  std::erase_if(w.blocked, under);
  std::size_t in_flight = 0;
  w.paths.ForEachUnder(from, [&](const std::string&, PathRecord& record) {
    if (record.dispatched && !record.moved_away) {
      record.moved_away = true;
      ++in_flight;
    }
  });
  Log(LogLevel::kDebug, LogEvent::kVerifySuperseded, {{"watch", w.config.name}, {"path", from}},
      "renamed to " + to + " (" + std::to_string(in_flight) +
          " verifications under way for the old name are dropped): verified under its new name");
}

// A rescan (the inotify queue overflowed) or a poll finds files without their writer's close,
// and can find one between two of its writes: closing, libhdf5 writes the superblock's end of
// file before the blocks that reach it, so for a moment the file reads as truncated. A warm
// verifier's verdict comes within a millisecond or two, often before the writer's next write
// changes the file (the check above): a burst of 1,000 saves with a 16-event inotify queue
// reported 7 files truncated, each verified ok at its close a moment later. While no close of
// the file was seen and a process holds it open for writing, a broken verdict is a save under
// way: looked at again in a moment (its close, if it comes first, brings its own verdict), and
// reported if the file is unchanged then. Without sight of other processes (the packaged unit's
// ProtectProc), the verdict stands, as before.
bool Pipeline::DeferBrokenWhileWriterHoldsIt(Watch& w, const VerifyJob& job,
                                             const VerifyResult& result,
                                             Clock::time_point dispatched_at,
                                             Clock::time_point now) {
  if (result.verdict == Verdict::kInProgress || result.verdict == Verdict::kEmpty) return false;
  PathRecord& record = w.paths[job.path];
  // After a close the verdict is final; after stuck_after of silence this look is the second.
  if (record.close && (record.close->closed || record.close->writing)) return false;
  std::string holder;
  if (env_.WritersOf(w.config.name, job.relative, dispatched_at, &holder) != OpenWriters::kSome)
    return false;
  if (record.incomplete_verdicts++ > 0) return false;  // the second look: the verdict stands
  LookAgain(w, job, result,
            "still open for writing by " + holder + ", no close seen (found by a rescan or a poll)",
            std::min<milliseconds>(w.config.stuck_after, kHeldOpenRecheck), now);
  return true;
}

// A verdict that is not final yet: said (verify_deferred, with `why`), and the file looked at
// again `delay` from `now`.
void Pipeline::LookAgain(Watch& w, const VerifyJob& job, const VerifyResult& result,
                         const std::string& why, milliseconds delay, Clock::time_point now) {
  Log(LogLevel::kInfo, LogEvent::kVerifyDeferred,
      {{"watch", job.watch}, {"path", job.path}, {"verdict", std::string(VerdictName(result.verdict))}},
      result.reason + "; " + why + ": looking again in " + FormatDuration(delay));
  w.settle->Touch(job.path, now + delay - w.config.settle);
}

// Whether a verdict is a failed save, not yet known, or stale — see
// docs/reliability.md, "When a save has failed".
void Pipeline::Judge(Watch& w, const VerifyJob& job, const VerifyResult& result) {
  const std::string& path = job.path;
  if (w.settle->Finish(path)) {
    // Written again while we read it: the newer write gets its own verdict.
    Log(LogLevel::kDebug, LogEvent::kVerifySuperseded, {{"watch", job.watch}, {"path", path}},
        "file was written again during verification; verifying the new write");
    return;
  }
  const Clock::time_point now = env_.Now();
  PathRecord& record = w.paths[path];
  const PathRecord::Dispatched dispatched = record.dispatched.value_or(PathRecord::Dispatched{});
  record.dispatched.reset();
  if (std::exchange(record.moved_away, false)) {  // renamed meanwhile: MovedAway()
    w.paths.Tidy(path);
    return;
  }
  // *.bin is a checkpoint only when its content says so (pytorch_model.bin); other programs'
  // .bin files are not failed saves.
  if (IsQuietlySkipped(path, result)) {
    if (dispatched.stat) Remember(w, path, *dispatched.stat, VerdictName(result.verdict), "");
    Log(LogLevel::kDebug, LogEvent::kNotCheckpoint,
        {{"watch", job.watch}, {"path", path}, {"format", result.format}},
        "skipped: " + result.reason);
    return;
  }
  // A broken verdict on a file that has changed since its write event — the
  // trainer's next save already truncating and rewriting it — describes a
  // save under way, not the one that completed: its own close will bring a
  // verdict. (The child catches changes during its read; this catches a
  // verification that ran entirely inside the next save's quiet moments.)
  // Should that close never come, the file is looked at after stuck_after.
  if (!result.ok()) {
    std::optional<FileStat> current = StatNow(w, path);
    const bool changed = current && (!dispatched.stat || !(*current == *dispatched.stat) ||
                                     current->mtime_ns > dispatched.event_ns);
    if (changed) {
      Log(LogLevel::kDebug, LogEvent::kVerifySuperseded,
          {{"watch", job.watch},
           {"path", path},
           {"verdict", std::string(VerdictName(result.verdict))}},
          "file changed after its write event (the next save is under way); waiting for that save");
      PathRecord& changed_record = w.paths[path];
      changed_record.last_event_ns = env_.RealtimeNs();
      if (!changed_record.close) changed_record.close = PathRecord::Close{};
      changed_record.close->closed = false;
      w.settle->Touch(path, now + w.config.stuck_after - w.config.settle);
      return;
    }
    if (DeferBrokenWhileWriterHoldsIt(w, job, result, dispatched.at, now)) return;
  }
  OutcomeInput input;
  const PathRecord::Close close = w.paths[path].close.value_or(PathRecord::Close{});
  input.closed = close.closed;
  input.stuck_after = w.config.stuck_after;
  if (result.verdict == Verdict::kInProgress || result.verdict == Verdict::kEmpty) {
    // Incomplete. After its writer's close (or rename), with nobody holding
    // it open for writing, that is final: the save failed, now. Otherwise —
    // a writer still has it open, or polling saw no close — it gets one more
    // look after stuck_after. An empty file always gets a second look, after
    // a moment: HDF5 closes a file once before it reopens it with O_TRUNC,
    // so a close can be followed by an empty file that is a save starting.
    std::string holder;
    const OpenWriters writers = env_.WritersOf(w.config.name, job.relative, dispatched.at, &holder);
    const bool writer_gone = close.closed && writers != OpenWriters::kSome;
    // A look after stuck_after of silence from a writer that never closed is already the second.
    // A writer that appeared since the last look (HDF5's reopen after its create-and-close,
    // whose write events the loop may not have read yet) makes this look a first again.
    PathRecord& looked = w.paths[path];
    if (looked.incomplete_verdicts > 0 && !looked.writer_at_last_look &&
        writers == OpenWriters::kSome && !close.writing)
      looked.incomplete_verdicts = 0;
    looked.writer_at_last_look = writers == OpenWriters::kSome;
    const bool first_look = looked.incomplete_verdicts++ == 0 && !close.writing;
    if (first_look && (!writer_gone || result.verdict == Verdict::kEmpty)) {
      const milliseconds delay = result.verdict == Verdict::kEmpty && writers != OpenWriters::kSome
                                     ? std::min<milliseconds>(w.config.stuck_after, kEmptyRecheck)
                                     : w.config.stuck_after;
      const std::string why = writers == OpenWriters::kSome ? "still open for writing by " + holder
                              : writer_gone
                                  ? "a save may be starting (closed, then reopened to truncate)"
                                  : "no close by its writer seen (polling)";
      return LookAgain(w, job, result, why, delay, now);
    }
    input.writer_died = writer_gone;
    input.stuck = !writer_gone;
    input.held_open = writers == OpenWriters::kSome;
    if (input.held_open) input.holder = holder;
  } else if (close.closed && result.verdict == Verdict::kCorrupt && result.expected_bytes &&
             result.bytes > *result.expected_bytes) {
    // Data past the end the superblock records: written after the writer's
    // last flush, whose close never came — h5py killed after flush().
    input.writer_died = true;
  } else if (std::string holder; close.closed && result.verdict == Verdict::kTruncated &&
             result.expected_bytes && result.bytes >= *result.expected_bytes &&
             env_.WritersOf(w.config.name, job.relative, dispatched.at, &holder) !=
                 OpenWriters::kSome) {
    // Whole as HDF5 (every byte its last flush recorded) yet its content stops
    // early — Keras layers missing from one on — closed, and nobody writes it:
    // h5py flushed after each layer and was killed. (Bytes cut short stay
    // cause truncated; a full disk wins either way: DecideOutcome.)
    input.writer_died = true;
  }
  // The cause is what the filesystem looked like when the save failed: the
  // lower free space of its close and of now (the trainer may have deleted
  // files since, or the disk filled only afterwards). A save that did not fail
  // has no such cause: its verdict costs no look at the filesystem (seven
  // system calls per file, a sixth of the daemon's, in a sharded save).
  FsSpace space_now;
  const bool have_now = !result.ok() && env_.SpaceForFile(w.config.name, job.relative, &space_now);
  if (close.space && (!have_now || close.space->avail < space_now.avail))
    input.space = close.space;
  else if (have_now)
    input.space = space_now;
  std::optional<ResolvedFailure> own_failure;
  {
    PathRecord& done = w.paths[path];
    done.incomplete_verdicts = 0;
    done.writer_at_last_look = false;
    done.close.reset();
    if (const auto& before = done.remembered; before && !before->cause.empty())
      own_failure = ResolvedFailure{path, w.runs.Of(path), before->verdict, before->cause, path, 0};
  }
  // A dead writer's file is not in_progress (outcome.h, AsReported).
  const VerifyResult reported = AsReported(result, input);
  const Outcome outcome = Report(w, job, reported, std::move(input));
  const std::string& cause = outcome.cause;
  if (dispatched.stat) {
    Remember(w, path, *dispatched.stat, VerdictName(reported.verdict), cause, &outcome);
    if (cause.empty() && result.ok()) {
      if (w.failures.Resolve(w.paths, w.config, RunsOf(w), path, *dispatched.stat, own_failure,
                             env_.UnixNow()))
        state_dirty_ = true;
      PublishFailing(w);
    }
    // The gauge moves with the failure, not a tick later (an alert may be reading it).
    if (cause != (own_failure ? own_failure->cause : std::string())) PublishFailing(w);
  }
  w.paths.Tidy(path);
}

void Pipeline::PublishFailing(Watch& w) {
  for (FailingFilesChanged& changed : w.failures.Publish(w.paths, w.config.name, RunsOf(w)))
    reporter_.Report(std::move(changed));
}

FailureTracker::RunOf Pipeline::RunsOf(const Watch& w) const {
  return [&w](const std::string& path) { return w.runs.Of(path); };
}

// The table bounds what it remembers (path_record.h).
void Pipeline::Remember(Watch& w, const std::string& path, const FileStat& stat,
                        std::string_view verdict, const std::string& cause,
                        const Outcome* outcome) {
  PathRecord::Remembered r{stat, 0, std::string(verdict), cause, "", std::nullopt};
  if (outcome && !cause.empty()) r.reason = outcome->message;
  if (outcome && outcome->load_problem) {
    r.load_problem = outcome->load_problem;
    r.load_problem->since_unix = env_.UnixNow();
  }
  state_dirty_ = true;
  w.failures.MarkChanged();
  w.paths.Remember(path, std::move(r));
}

Outcome Pipeline::Report(Watch& w, const VerifyJob& job, const VerifyResult& result,
                         OutcomeInput input) {
  input.watch = job.watch;
  input.min_free = w.config.min_free;
  input.load_target = WatchLoadTarget(w.config);
  input.fail_on_incompatible = w.config.fail_on_incompatible;
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
  bool quiet = false;
  if (!outcome.cause.empty()) {
    std::string note;
    quiet = LimitRepeat(w.paths[job.path].repeat,
                        std::string(VerdictName(result.verdict)) + "/" + outcome.cause, env_.Now(),
                        env_.UnixNow(), config_.log.repeat_every, &note);
    if (!note.empty()) {
      outcome.message += " " + note;
      outcome.fields.push_back({"repeats", std::to_string(w.paths[job.path].repeat->count)});
    }
  } else {
    if (PathRecord* record = w.paths.Find(job.path)) record->repeat.reset();
  }
  const std::string run = w.runs.Of(job.path);
  VerdictReached reached{job.watch, run, job.path, result.verdict, result.level,
                         result.elapsed_ms / 1000.0, result.bytes, outcome.cause, outcome.load,
                         std::nullopt, std::nullopt, env_.UnixNow()};
  if (result.ok()) reached.good_unix = reached.unix;
  if (!quiet) {
    AddRunField(&outcome.fields);
    reached.line =
        Logged{outcome.level, LogEvent::kVerify, std::move(outcome.fields), outcome.message};
  }
  outcome.fields.clear();
  reporter_.Report(reached);

  ReportRuns(w.runs.See(run));
  if (result.ok()) {
    ++w.ok_total;
    w.last_good_time = reached.good_unix;
    w.last_good_bytes = result.bytes;
    w.last_good_path = job.path;
    w.runs.SetLastGood(run, {job.path, *w.last_good_time, result.bytes});
    if (w.stale) {
      w.stale->Ok(env_.Now());
      SetProblem(w, WatchProblem::kStale, false);
    }
  } else {
    ++w.failed_total;
  }
  CheckSpace(w);
  return outcome;
}

}  // namespace ckptwatch
