// Verdicts (supersede, second look, outcome) and watch problems.
#include <algorithm>
#include <cstdio>
#include <ctime>

#include "config/units.h"
#include "decide/outcome.h"
#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"
#include "verify/verifier.h"

namespace ckptwatch {
namespace {

using std::chrono::milliseconds;

// How long an empty file gets to start growing before it is a failed save.
constexpr milliseconds kEmptyRecheck{2000};
// How often a watch re-checks that its writer can create files there.
constexpr std::chrono::seconds kWritableCheckEvery{30};

std::string HumanDuration(double seconds) {
  char text[32];
  if (seconds < 120)
    std::snprintf(text, sizeof text, "%.0fs", seconds);
  else if (seconds < 7200)
    std::snprintf(text, sizeof text, "%.0fm", seconds / 60);
  else
    std::snprintf(text, sizeof text, "%.1fh", seconds / 3600);
  return text;
}

// "14:05" (UTC, as the log's timestamps) for "again, ×N since 14:05".
std::string ClockTime(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[16];
  std::snprintf(text, sizeof text, "%02d:%02d", utc.tm_hour, utc.tm_min);
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
  if (w && !stopping_) Judge(*w, job, result);
  if (!stopping_) DrainBlocked();  // a place in the verify queue is free
  reporter_.SetQueueLength(QueueLength());
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
  std::erase_if(w.blocked, under);
  std::erase_if(w.blocked_set, under);
  std::size_t in_flight = 0;
  for (const auto& [path, dispatched] : w.dispatched)
    if (under(path) && w.moved_away.insert(path).second) ++in_flight;
  Log(LogLevel::kDebug, "verify_superseded", {{"watch", w.config.name}, {"path", from}},
      "renamed to " + to + " (" + std::to_string(in_flight) +
          " verifications under way for the old name are dropped): verified under its new name");
}

// Whether a verdict is a failed save, not yet known, or stale — see
// docs/reliability.md, "When a save has failed".
void Pipeline::Judge(Watch& w, const VerifyJob& job, const VerifyResult& result) {
  const std::string& path = job.path;
  if (w.settle->Finish(path)) {
    // Written again while we read it: the newer write gets its own verdict.
    Log(LogLevel::kDebug, "verify_superseded", {{"watch", job.watch}, {"path", path}},
        "file was written again during verification; verifying the new write");
    return;
  }
  const Clock::time_point now = env_.Now();
  Watch::Dispatched dispatched = w.dispatched[path];
  w.dispatched.erase(path);
  if (w.moved_away.erase(path)) return;  // renamed meanwhile: MovedAway()
  // *.bin is a checkpoint only when its content says so (pytorch_model.bin); other programs'
  // .bin files are not failed saves.
  if (IsQuietlySkipped(path, result)) {
    if (dispatched.stat) Remember(w, path, *dispatched.stat, VerdictName(result.verdict), "");
    Log(LogLevel::kDebug, "not_checkpoint",
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
      Log(LogLevel::kDebug, "verify_superseded",
          {{"watch", job.watch},
           {"path", path},
           {"verdict", std::string(VerdictName(result.verdict))}},
          "file changed after its write event (the next save is under way); waiting for that save");
      w.last_event_ns[path] = env_.RealtimeNs();
      w.closes[path].closed = false;
      w.settle->Touch(path, now + w.config.stuck_after - w.config.settle);
      return;
    }
  }
  OutcomeInput input;
  const Watch::Close close = w.closes.count(path) ? w.closes[path] : Watch::Close{};
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
    const bool first_look = w.in_progress_seen[path]++ == 0 && !close.writing;
    if (first_look && (!writer_gone || result.verdict == Verdict::kEmpty)) {
      const milliseconds delay = result.verdict == Verdict::kEmpty && writers != OpenWriters::kSome
                                     ? std::min<milliseconds>(w.config.stuck_after, kEmptyRecheck)
                                     : w.config.stuck_after;
      const std::string why = writers == OpenWriters::kSome ? "still open for writing by " + holder
                              : writer_gone
                                  ? "a save may be starting (closed, then reopened to truncate)"
                                  : "no close by its writer seen (polling)";
      Log(LogLevel::kInfo, "verify_deferred",
          {{"watch", job.watch},
           {"path", path},
           {"verdict", std::string(VerdictName(result.verdict))}},
          result.reason + "; " + why + ": looking again in " + FormatDuration(delay));
      w.settle->Touch(path, now + delay - w.config.settle);
      return;
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
  }
  // The cause is what the filesystem looked like when the save failed: the
  // lower free space of its close and of now (the trainer may have deleted
  // files since, or the disk filled only afterwards).
  FsSpace space_now;
  const bool have_now = env_.SpaceForFile(w.config.name, job.relative, &space_now);
  if (close.space && (!have_now || close.space->avail < space_now.avail))
    input.space = close.space;
  else if (have_now)
    input.space = space_now;
  w.in_progress_seen.erase(path);
  w.closes.erase(path);
  std::optional<ResolvedFailure> own_failure;
  if (auto before = w.reported.find(path); before != w.reported.end() && !before->second.cause.empty())
    own_failure = ResolvedFailure{path, RunOf(w, path), before->second.verdict, before->second.cause, path, 0};
  const Outcome outcome = Report(w, job, result, std::move(input));
  const std::string& cause = outcome.cause;
  if (dispatched.stat) {
    Remember(w, path, *dispatched.stat, VerdictName(result.verdict), cause, &outcome);
    if (cause.empty() && result.ok()) ResolveFailures(w, path, *dispatched.stat, own_failure);
    // The gauge moves with the failure, not a tick later (an alert may be reading it).
    if (cause != (own_failure ? own_failure->cause : std::string())) PublishFailing(w);
  }
}

// Bounded: the oldest remembered verdicts go first. A forgotten file only
// costs a verification of a close without a write.
void Pipeline::Remember(Watch& w, const std::string& path, const FileStat& stat,
                        std::string_view verdict, const std::string& cause,
                        const Outcome* outcome) {
  const std::uint64_t seq = ++w.reported_seq;
  Watch::Reported& r = w.reported[path];
  r = {stat, seq, std::string(verdict), cause, "", std::nullopt};
  if (outcome && !cause.empty()) r.reason = outcome->message;
  if (outcome && outcome->load_problem) {
    r.load_problem = outcome->load_problem;
    r.load_problem->since_unix = env_.UnixNow();
  }
  state_dirty_ = true;
  w.failing_dirty = true;
  w.reported_order.emplace_back(seq, path);
  while (w.reported.size() > limits_.max_remembered_per_watch && !w.reported_order.empty()) {
    auto [old_seq, old_path] = std::move(w.reported_order.front());
    w.reported_order.pop_front();
    auto it = w.reported.find(old_path);
    if (it != w.reported.end() && it->second.seq == old_seq) w.reported.erase(it);
  }
  CompactRemembered(w);
}

// Rewrites and deletions leave stale entries in the order; compact before
// they outgrow the map (a deleted flood must give its memory back).
void Pipeline::CompactRemembered(Watch& w) {
  if (w.reported_order.size() <= 2 * w.reported.size() + 1024) return;
  std::deque<std::pair<std::uint64_t, std::string>> live;
  for (auto& entry : w.reported_order) {
    auto it = w.reported.find(entry.second);
    if (it != w.reported.end() && it->second.seq == entry.first) live.push_back(std::move(entry));
  }
  w.reported_order.swap(live);
}

// The same file failing the same way again — an in-place rewrite each epoch
// on a full disk — is one line per log.repeat_every, with a count.
bool Pipeline::Repeated(Watch& w, const std::string& path, const std::string& key,
                        std::string* note) {
  const Clock::time_point now = env_.Now();
  Watch::Repeat& r = w.repeats[path];
  if (r.key != key) {
    r = {key, env_.UnixNow(), 1, now};
    return false;
  }
  ++r.count;
  if (config_.log.repeat_every.count() > 0 && now - r.last_logged < config_.log.repeat_every)
    return true;
  r.last_logged = now;
  *note = "(again, ×" + std::to_string(r.count) + " since " + ClockTime(r.first_unix) + ")";
  return false;
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
    quiet = Repeated(w, job.path, std::string(VerdictName(result.verdict)) + "/" + outcome.cause,
                     &note);
    if (!note.empty()) {
      outcome.message += " " + note;
      outcome.fields.push_back({"repeats", std::to_string(w.repeats[job.path].count)});
    }
  } else {
    w.repeats.erase(job.path);
  }
  if (!quiet) Log(outcome.level, "verify", std::move(outcome.fields), outcome.message);
  outcome.fields.clear();

  const std::string run = RunOf(w, job.path);
  SeeRun(w, run);
  reporter_.Verified(job.watch, result.verdict, result.level, result.elapsed_ms / 1000.0,
                     result.bytes);
  reporter_.SetLastCheckpointOk(job.watch, run, outcome.cause.empty());
  if (outcome.load)
    reporter_.SetLoadIncompatible(job.watch, *outcome.load == LoadOutcome::kIncompatible);
  if (result.ok()) {
    ++w.ok_total;
    w.last_good_time = env_.UnixNow();
    w.last_good_bytes = result.bytes;
    w.last_good_path = job.path;
    reporter_.SetLastGood(job.watch, run, *w.last_good_time, result.bytes);
    if (!run.empty()) w.run_last_good[run] = {job.path, *w.last_good_time, result.bytes};
    if (w.stale) {
      w.stale->Ok(env_.Now());
      SetProblem(w, WatchProblem::kStale, false);
    }
  } else {
    ++w.failed_total;
  }
  if (!outcome.cause.empty()) reporter_.SaveFailed(job.watch, run, outcome.cause);
  CheckSpace(w);
  return outcome;
}

// ---- state across restarts -------------------------------------------------

SavedState Pipeline::Saved() const {
  SavedState state;
  for (const auto& [name, w] : watches_) {
    SavedWatch& saved = state.watches[name];
    saved.path = w->config.path;
    // Newest first, so a bounded state file keeps the files that matter.
    std::vector<std::pair<std::uint64_t, const std::string*>> order;
    for (const auto& [path, r] : w->reported) order.emplace_back(r.seq, &path);
    std::sort(order.rbegin(), order.rend());
    for (const auto& [seq, path] : order) {
      const Watch::Reported& r = w->reported.at(*path);
      auto repeat = w->repeats.find(*path);
      saved.files.push_back({*path, r.stat, r.verdict, r.cause,
                             repeat != w->repeats.end() ? repeat->second.first_unix : 0});
    }
    if (w->last_good_time) {
      SavedFile good;
      good.path = w->last_good_path;
      good.stat.size = w->last_good_bytes;
      good.verdict = "ok";
      good.since_unix = *w->last_good_time;
      saved.last_good = good;
    }
  }
  return state;
}

// The start scan of a watch with saved state: a file whose size, mtime and
// inode are as saved keeps its verdict (a failure stays known, not new);
// everything else is verified. True when there was state to use.
bool Pipeline::RestoreWatch(Watch& w, const Snapshot& snapshot) {
  if (!w.restored) return false;
  SavedWatch saved = std::move(*w.restored);
  w.restored.reset();
  if (saved.path != w.config.path) return false;
  std::map<std::string, const SavedFile*> by_path;
  for (const SavedFile& f : saved.files) by_path[f.path] = &f;
  const Clock::time_point now = env_.Now();
  std::size_t kept = 0, failing = 0, changed = 0;
  for (const auto& [path, stat] : snapshot.files) {
    auto it = by_path.find(path);
    if (it == by_path.end() || !(it->second->stat == stat)) {
      Touch(w, path, now - w.config.settle);
      ++changed;
      continue;
    }
    const SavedFile& f = *it->second;
    Remember(w, path, stat, f.verdict, f.cause);
    ++kept;
    if (!f.cause.empty()) {
      // Known already: the next failure of this file is "again", not new.
      w.repeats[path] = {f.verdict + "/" + f.cause, f.since_unix, 1, Clock::time_point{}};
      ++failing;
    }
  }
  if (saved.last_good && snapshot.files.count(saved.last_good->path)) {
    w.last_good_time = saved.last_good->since_unix;
    w.last_good_bytes = saved.last_good->stat.size;
    w.last_good_path = saved.last_good->path;
    reporter_.SetLastGood(w.config.name, RunOf(w, w.last_good_path), *w.last_good_time,
                          w.last_good_bytes);
  }
  Log(LogLevel::kInfo, "state_restored",
      {{"watch", w.config.name},
       {"unchanged", std::to_string(kept)},
       {"failing", std::to_string(failing)},
       {"changed", std::to_string(changed)}},
      "verdicts from before the restart kept for unchanged files; changed and new files are "
      "verified");
  return true;
}

// ---- problems ----------------------------------------------------------------

void Pipeline::SetProblem(Watch& w, WatchProblem problem, bool active, const std::string& reason) {
  reporter_.SetProblem(w.config.name, problem, active);
  const std::string name(WatchProblemName(problem));
  switch (w.problems.Set(name, active, reason)) {
    case ProblemSet::Change::kStarted:
      Log(problem == WatchProblem::kMissingDirectory ? LogLevel::kWarn : LogLevel::kError,
          "problem", {{"watch", w.config.name}, {"problem", name}, {"path", w.config.path}},
          reason);
      break;
    case ProblemSet::Change::kCleared:
      Log(LogLevel::kInfo, "problem_cleared",
          {{"watch", w.config.name}, {"problem", name}, {"path", w.config.path}});
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
  std::vector<LogField> fields = {
      {"watch", w.config.name},
      {"state", w.state == Watch::State::kActive ? "active" : "missing"},
      {"ok", std::to_string(w.ok_total)},
      {"failed", std::to_string(w.failed_total)}};
  std::string msg;
  if (w.last_good_time) {
    double age = env_.UnixNow() - *w.last_good_time;
    fields.push_back({"last_good", w.last_good_path});
    fields.push_back({"last_good_age_s", std::to_string(static_cast<long long>(age))});
    fields.push_back({"last_good_bytes", std::to_string(w.last_good_bytes)});
    msg = "last good checkpoint " + Basename(w.last_good_path) + " (" +
          HumanBytes(w.last_good_bytes) + ") " + HumanDuration(age) + " ago";
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
