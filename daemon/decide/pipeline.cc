// Events, scans and dispatch. Watch lifecycle: pipeline_lifecycle.cc; verdicts and problems:
// pipeline_verdict.cc.
#include "decide/pipeline.h"

#include <algorithm>
#include <cerrno>
#include <set>
#include <sys/stat.h>

#include "config/units.h"
#include "decide/pipeline_watch.h"
#include "verify/verifier.h"
#include "watch/name_patterns.h"

namespace ckptwatch {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

}  // namespace

std::string RelativeTo(const std::string& root, const std::string& path) {
  if (path.size() <= root.size() + 1 || path.compare(0, root.size(), root) != 0 ||
      path[root.size()] != '/')
    return "";
  return path.substr(root.size() + 1);
}

Pipeline::Pipeline(Config config, Env& env, Watcher* watcher, Scanner& scanner, Verifier& verifier,
                   SetJudge& set_judge, Reporter& reporter, PipelineLimits limits)
    : config_(std::move(config)),
      env_(env),
      watcher_(watcher),
      scanner_(scanner),
      verifier_(verifier),
      set_judge_(set_judge),
      reporter_(reporter),
      limits_(limits) {}

Pipeline::~Pipeline() = default;

Pipeline::Watch* Pipeline::FindWatch(const std::string& name) {
  auto it = watches_.find(name);
  return it == watches_.end() ? nullptr : it->second.get();
}

Pipeline::Watch* Pipeline::FindByWatchId(int id) {
  for (auto& [name, w] : watches_)
    if (w->watch_id == id || w->missing_id == id) return w.get();
  return nullptr;
}

std::string Pipeline::Status() const {
  std::size_t active = 0, missing = 0;
  for (const auto& [name, w] : watches_) (w->state == Watch::State::kActive ? active : missing)++;
  return "watching " + std::to_string(active) + " director" + (active == 1 ? "y" : "ies") +
         (missing ? ", " + std::to_string(missing) + " missing" : "") + "; " +
         std::to_string(verifier_.running()) + " verifying, " + std::to_string(QueueLength()) +
         " queued";
}

std::optional<Pipeline::Clock::time_point> Pipeline::NextDeadline() const {
  std::optional<Clock::time_point> next;
  if (stopping_) return next;
  for (const auto& [name, w] : watches_) {
    // Files waiting for the verify queue go as soon as it has room.
    if (!w->blocked.empty() && !verifier_.Full()) return env_.Now();
    for (auto deadline : {w->settle->NextDeadline(), w->sets->NextDeadline()})
      if (deadline && (!next || *deadline < *next)) next = deadline;
  }
  return next;
}

// ---- events ----------------------------------------------------------------

void Pipeline::OnWatchEvent(const WatchEvent& event) {
  if (stopping_) return;
  Watch* w = FindByWatchId(event.watch_id);
  if (!w) return;
  if (w->state == Watch::State::kMissing) return HandleMissingEvent(*w, event);
  SetEvent(*w, event);
  switch (event.kind) {
    case WatchEvent::Kind::kFileWritten:
      if (MatchesPatterns(w->config.patterns, event.path) && Wanted(*w, event.path)) OnFileEvent(*w, event.path);
      break;
    case WatchEvent::Kind::kFileWriting:
      if (MatchesPatterns(w->config.patterns, event.path) && Wanted(*w, event.path))
        WriteUnderWay(*w, event.path);
      break;
    case WatchEvent::Kind::kDirectoryCreated: {
      // A staging directory (Orbax's *.orbax-checkpoint-tmp-*) is not looked
      // into: its rename into place is a kDirectoryCreated of its final name.
      if (!Wanted(*w, event.path)) break;
      // A directory named like a checkpoint is a failed or foreign save: say so.
      if (MatchesPatterns(w->config.patterns, event.path)) OnFileEvent(*w, event.path);
      // Files written before the new directory's watch existed made no event.
      // A non-recursive watch looks at its own directory only.
      const std::string relative = RelativeTo(w->config.path, event.path);
      if (!relative.empty() && w->config.recursive) {
        if (!w->baseline_done) w->created_during_baseline.insert(event.path);
        ReportRuns(w->runs.See(w->runs.Of(event.path, /*directory=*/true)));
        ScheduleScan(*w, ScanReason::kNewDirectory, relative);
      }
      break;
    }
    case WatchEvent::Kind::kNameGone:
      if (!event.moved_to.empty()) MovedAway(*w, event.path, event.moved_to);
      ReportRuns(w->runs.Gone(event.path));
      Forget(*w, event.path);
      break;
    case WatchEvent::Kind::kDirectoryGone:
      if (event.path == w->config.path) GoMissing(*w, "it was deleted or moved away");
      else Forget(*w, event.path);
      break;
    case WatchEvent::Kind::kOverflow:
      Log(LogLevel::kWarn, LogEvent::kOverflow, {{"watch", w->config.name}}, event.reason);
      ScheduleScan(*w, ScanReason::kOverflow);
      break;
    case WatchEvent::Kind::kWatchFailed:
      WatchFailed(*w, event);
      break;
    case WatchEvent::Kind::kAttributesChanged:
      // A chmod/chown of the watch directory may make or unmake the writer's access.
      if (event.path == w->config.path) CheckWritable(*w);
      break;
  }
}

// An event names a path; what is there now decides what happens. A name
// reached through a symlinked directory (an inotify watch that was swapped
// into a private directory, say) is dropped without a word: its name may be
// someone else's secret. A symlink named like a checkpoint is reported as a
// symlink, never followed.
void Pipeline::OnFileEvent(Watch& w, const std::string& path) {
  const std::string relative = RelativeTo(w.config.path, path);
  if (relative.empty()) return;
  switch (env_.Probe(w.config.name, relative).kind) {
    case EntryKind::kRegular:
    case EntryKind::kNotRegular:
    case EntryKind::kDenied:
    case EntryKind::kWithheld:
    case EntryKind::kError:
      return Touch(w, path, env_.Now(), /*closed=*/true);
    case EntryKind::kSymlink:
      return ReportSymlink(w, path, relative);
    case EntryKind::kMissing:        // gone already (a temporary name)
    case EntryKind::kSymlinkInPath:  // not beneath the root any more
      return;
  }
}

void Pipeline::ReportSymlink(Watch& w, const std::string& path, const std::string& relative) {
  std::string target;
  const LinkTarget where = env_.ResolveSymlink(w.config.name, relative, &target);
  PathRecord& record = w.paths[path];
  if (record.link_target == target) return;
  record.link_target = target;
  const std::vector<LogField> fields = {{"watch", w.config.name}, {"path", path}, {"target", target}};
  switch (where) {
    case LinkTarget::kInside:
      // Lightning's last.ckpt, a Hugging Face snapshot: the target is a file
      // of this watch and gets its own verdict.
      Log(LogLevel::kDebug, LogEvent::kSymlinkSkipped, fields,
          "symlink to a file inside the watch; that file gets its own verdict");
      break;
    case LinkTarget::kDangling:
      Log(LogLevel::kWarn, LogEvent::kSymlinkDangling, fields,
          "symlink to a checkpoint that does not exist: the save it points to failed or was deleted");
      break;
    case LinkTarget::kOutside:
      Log(LogLevel::kWarn, LogEvent::kSymlinkOutside, fields,
          "symlink leads outside the watched directory: not followed, not verified");
      break;
  }
}

bool Pipeline::Wanted(const Watch& w, const std::string& path) const {
  const std::string relative = RelativeTo(w.config.path, path);
  if (relative.empty() || Excluded(w.config.exclude, relative)) return false;
  return w.config.recursive || relative.find('/') == std::string::npos;
}

void Pipeline::Touch(Watch& w, const std::string& path, Clock::time_point when, bool closed) {
  // Bounded: past the limit a write is left for the rescan that follows
  // once the backlog has halved (OnTick), never lost.
  if (!w.settle->IsPending(path) &&
      w.settle->pending_count() + w.blocked.size() >= limits_.max_pending_per_watch) {
    if (!w.overflowed)
      Log(LogLevel::kWarn, LogEvent::kQueueFull, {{"watch", w.config.name}},
          std::to_string(limits_.max_pending_per_watch) +
              " files are waiting in this watch: newer writes are picked up by a rescan once "
              "half of them are verified");
    w.overflowed = true;
    return;
  }
  ReportRuns(w.runs.See(w.runs.Of(path)));
  // A new write means the writer made progress: an earlier in_progress was
  // that save under way, not a save stuck open.
  PathRecord& record = w.paths[path];
  record.incomplete_verdicts = 0;
  record.writer_at_last_look = false;
  record.last_event_ns = env_.RealtimeNs();
  record.close = PathRecord::Close{closed, false, std::nullopt};
  FsSpace space;
  if (closed && env_.SpaceForFile(w.config.name, RelativeTo(w.config.path, path), &space))
    record.close->space = space;
  if (!w.settle->Touch(path, when)) {
    record.ForgetWriteEvent();
    w.paths.Tidy(path);
    w.overflowed = true;
  }
}

// A save under way: nothing to verify until its writer closes the file. Should
// the writer fall silent with the file still open instead, that is a hung save:
// the file is looked at once stuck_after has passed without a write (each
// write pushes the look back), and that look is its second (Judge).
void Pipeline::WriteUnderWay(Watch& w, const std::string& path) {
  // A close already waits to be verified: the write after it is that save's, or the next one's
  // whose own close or silence comes later. Not so when what waits is a second look at an
  // incomplete file (HDF5's create-and-close before its O_TRUNC reopen looks empty): this write
  // is that save under way, so the look moves to stuck_after and counts as a first again.
  if (const PathRecord* record = w.paths.Find(path);
      record && record->close && record->close->closed && record->incomplete_verdicts == 0 &&
      w.settle->IsPending(path))
    return;
  Touch(w, path, env_.Now() + w.config.stuck_after - w.config.settle, /*closed=*/false);
  if (PathRecord* record = w.paths.Find(path); record && record->close) record->close->writing = true;
}

// The name is gone (deleted, renamed away): what the daemon kept about it,
// and about everything below it if it was a directory, goes too. A pending
// path stays pending: its verdict says not_found if it is gone for good.
void Pipeline::Forget(Watch& w, const std::string& path) {
  state_dirty_ = true;
  w.failures.MarkChanged();
  const PathRecord* record = w.paths.Find(path);
  w.paths.Forget(path, w.settle->IsPending(path) || (record && record->blocked));
  const std::string relative = RelativeTo(w.config.path, path);
  if (!relative.empty() && !w.unwatched.empty()) {
    w.unwatched.ForgetUnder(relative);
    if (w.unwatched.empty()) SetProblem(w, WatchProblem::kDegradedWatching, false);
  }
}

// A directory that could not get an inotify watch (the watch limit, most
// likely) is polled on its own; the rest of the watch keeps its events.
void Pipeline::WatchFailed(Watch& w, const WatchEvent& event) {
  std::string relative;
  if (event.path != w.config.path) {
    relative = RelativeTo(w.config.path, event.path);
    if (relative.empty()) return;
  }
  Log(LogLevel::kError, LogEvent::kWatchFailed, {{"watch", w.config.name}, {"path", event.path}},
      event.reason + "; polling it every " + FormatDuration(w.config.poll_interval) + " instead");
  const std::size_t n = w.unwatched.Add(relative, w.config.settle);
  SetProblem(w, WatchProblem::kDegradedWatching, true,
             event.reason + "; " + std::to_string(n) + (n == 1 ? " directory is" : " directories are") +
                 " polled every " + FormatDuration(w.config.poll_interval) + " instead");
  ScheduleScan(w, ScanReason::kDegradedPoll, relative);
}

void Pipeline::PollUnwatched(Watch& w, Clock::time_point now) {
  for (const std::string& relative : w.unwatched.Due(now, w.config.poll_interval))
    ScheduleScan(w, ScanReason::kDegradedPoll, relative);
}

void Pipeline::OnUnwatchedScan(Watch& w, const ScanResult& result, Clock::time_point now) {
  const std::string& relative = result.request.relative;
  if (!w.unwatched.Finished(relative)) return;
  if (!result.ok) {
    if (result.error_code == ENOENT || result.error_code == ENOTDIR || result.error_code == ELOOP) {
      w.unwatched.Remove(relative);  // the directory went away: nothing left to poll
      if (w.unwatched.empty()) SetProblem(w, WatchProblem::kDegradedWatching, false);
    } else {
      Log(LogLevel::kError, LogEvent::kScanFailed, {{"watch", w.config.name}}, result.error);
    }
    return;
  }
  Snapshot snapshot;
  for (const auto& [path, stat] : result.snapshot.files)
    if (Wanted(w, path)) snapshot.files.emplace(path, stat);
  auto seen = [&w](const std::string& path, const FileStat& stat) {
    const PathRecord* record = w.paths.Find(path);
    return record && record->seen == stat;
  };
  for (const std::string& path : w.unwatched.Polled(relative, snapshot, now, seen))
    Touch(w, path, now);
}

// ---- scans -----------------------------------------------------------------

void Pipeline::ScheduleScan(Watch& w, ScanReason reason, const std::string& subdir) {
  if (w.state != Watch::State::kActive || stopping_) return;
  const bool degraded = reason == ScanReason::kDegradedPoll;
  const bool whole_watch = subdir.empty() && !degraded;
  if (whole_watch && w.scan_running && reason != ScanReason::kStart) {
    // Scan again right after the running one.
    if (w.polling) w.next_poll = env_.Now();
    else w.pending_rescan = reason;
    return;
  }
  ScanRequest request;
  request.watch = w.config.name;
  request.root_path = w.config.path;
  request.relative = subdir;
  request.recursive = subdir.empty() ? w.config.recursive : true;
  request.patterns = w.config.patterns;
  request.exclude = w.config.exclude;
  request.reason = reason;
  if (whole_watch) w.scan_running = true;
  if (!whole_watch && !degraded) ++w.subdir_scans;  // checkpoint sets wait for what it finds
  if (degraded) w.unwatched.Started(subdir);
  scanner_.Scan(std::move(request));
}

void Pipeline::OnScanDone(const ScanResult& result) {
  Watch* w = FindWatch(result.request.watch);
  if (!w || stopping_) return;
  const ScanReason reason = result.request.reason;
  const Clock::time_point now = env_.Now();
  if (reason == ScanReason::kDegradedPoll) {
    if (w->state == Watch::State::kActive) OnUnwatchedScan(*w, result, now);
    else w->unwatched.Finished(result.request.relative);
    return;
  }
  const bool whole_watch = result.request.relative.empty();
  if (whole_watch) w->scan_running = false;
  if (!whole_watch && w->subdir_scans > 0) --w->subdir_scans;
  w->sets->Recheck(now);
  if (w->state != Watch::State::kActive) return;
  if (!result.ok) {
    if (whole_watch && !env_.IsTrustedDirectory(w->config.path)) return GoMissing(*w, result.error);
    // A new directory renamed away or swapped for a symlink before its scan
    // ran (a staging directory, say): nothing was lost, nothing to report.
    if (!whole_watch && (result.error_code == ENOENT || result.error_code == ENOTDIR ||
                         result.error_code == ELOOP || result.error_code == EXDEV)) {
      Log(LogLevel::kDebug, LogEvent::kScanSkipped,
          {{"watch", w->config.name}, {"path", w->config.path + "/" + result.request.relative}},
          result.error);
      return;
    }
    Log(LogLevel::kError, LogEvent::kScanFailed,
        {{"watch", w->config.name},
         {"path", whole_watch ? w->config.path : w->config.path + "/" + result.request.relative}},
        result.error);
    return;
  }
  // A directory renamed (a staging directory moved into place) or deleted while its scan ran was
  // listed under a name that is gone: its files would be not_found. Its rename's own events
  // scan it under the new name; a rename after this probe drops what it left pending.
  if (!whole_watch) {
    const EntryInfo dir = env_.Probe(w->config.name, result.request.relative);
    if (dir.kind != EntryKind::kNotRegular || !S_ISDIR(dir.mode)) {
      Log(LogLevel::kDebug, LogEvent::kScanSkipped,
          {{"watch", w->config.name}, {"path", w->config.path + "/" + result.request.relative}},
          "renamed or deleted while it was scanned: what the scan listed is gone");
      return;
    }
  }
  // Staging directories and, in a non-recursive watch, subdirectories are
  // not this watch's files, whatever the scanner was given.
  Snapshot snapshot;
  for (const auto& [path, stat] : result.snapshot.files)
    if (Wanted(*w, path)) snapshot.files.emplace(path, stat);
  if (whole_watch && reason != ScanReason::kStart) {
    // Names the scan no longer finds were deleted while events were lost
    // (or, polling, since the last poll): forget them.
    std::vector<std::string> gone;
    for (const auto& [path, record] : w->paths)
      if (record.seen && !snapshot.files.count(path) && !w->settle->IsPending(path))
        gone.push_back(path);
    for (const std::string& path : gone) Forget(*w, path);
  }
  if (reason == ScanReason::kStart) {
    // Verify the newest checkpoint so state is known right after a restart;
    // the rest of the history is left alone.
    for (const std::string& dir : std::exchange(w->created_during_baseline, {}))
      std::erase_if(snapshot.files, [&](const auto& file) {
        return file.first.compare(0, dir.size() + 1, dir + "/") == 0;
      });
    w->paths.SetSeen(snapshot);
    if (w->poller) w->poller->Baseline(snapshot);
    w->baseline_done = true;
    ReportRuns(w->runs.Seed(snapshot));
    if (RestoreWatch(*w, snapshot)) return;
    if (w->verify_all_on_start) {
      w->verify_all_on_start = false;
      for (const auto& [path, stat] : snapshot.files)
        if (!HasWriteEvent(*w, path)) Touch(*w, path, now - w->config.settle);
      return;
    }
    auto newest = std::max_element(snapshot.files.begin(), snapshot.files.end(),
                                   [](const auto& a, const auto& b) { return a.second.mtime_ns < b.second.mtime_ns; });
    if (newest != snapshot.files.end() && !HasWriteEvent(*w, newest->first))
      w->settle->Touch(newest->first, now - w->config.settle);
    return;
  }
  if (reason == ScanReason::kPoll) {
    for (const std::string& path : w->poller->Update(snapshot, now)) Touch(*w, path, now);
    return;
  }
  // A rescan (overflow, new directory, queue full): verify what changed since
  // we last looked, so each completed write still gets exactly one verdict.
  std::size_t changed = 0;
  for (const auto& [path, stat] : snapshot.files) {
    if (const PathRecord* record = w->paths.Find(path); record && record->seen == stat) continue;
    // `known` changes when the file is dispatched, not here: a write left
    // out because the backlog is full is found again by the next rescan.
    Touch(*w, path, now);
    ++changed;
  }
  if (reason != ScanReason::kNewDirectory) {
    reporter_.Report(Rescanned{w->config.name, reason, snapshot.files.size(), changed});
  }
}

// ---- dispatch --------------------------------------------------------------

void Pipeline::OnSettleDue() {
  if (stopping_) return;
  DrainBlocked();
  const Clock::time_point now = env_.Now();
  for (auto& [name, w] : watches_) {
    for (const std::string& path : w->settle->Ready(now)) Dispatch(*w, path);
    JudgeDueSets(*w, now);
  }
  reporter_.Report(QueueLengthChanged{QueueLength()});
}

std::size_t Pipeline::QueueLength() const {
  std::size_t length = verifier_.waiting();
  for (const auto& [name, w] : watches_) length += w->blocked.size();
  return length;
}

// Backpressure: a settled file the verify queue has no room for waits here,
// in order, and goes when a verdict frees a place (DrainBlocked()).
void Pipeline::Block(Watch& w, const std::string& path) {
  PathRecord& record = w.paths[path];
  if (record.blocked) return;
  record.blocked = true;
  if (w.blocked.empty())
    Log(LogLevel::kInfo, LogEvent::kQueueFull, {{"watch", w.config.name}},
        "the verify queue is full (verify.queue_limit " + std::to_string(config_.verify.queue_limit) +
            "): settled files wait their turn");
  w.blocked.push_back(path);
}

// One path per watch in turn, so a flood in one watch does not starve another.
void Pipeline::DrainBlocked() {
  if (draining_) return;
  draining_ = true;
  bool progress = true;
  while (progress && !verifier_.Full()) {
    progress = false;
    for (auto& [name, w] : watches_) {
      if (w->blocked.empty() || verifier_.Full()) continue;
      std::string path = std::move(w->blocked.front());
      w->blocked.pop_front();
      if (PathRecord* record = w->paths.Find(path)) record->blocked = false;
      w->paths.Tidy(path);
      progress = true;
      if (w->settle->IsPending(path)) continue;  // written again: its settle decides
      Dispatch(*w, path);
    }
  }
  draining_ = false;
}

// A file written since the watch began has its write events, and they decide its look: a scan
// that ran while its save was under way must not look at it now (it would find its writer hung)
// nor forget that its writer already closed it.
bool Pipeline::HasWriteEvent(const Watch& w, const std::string& path) const {
  const PathRecord* record = w.paths.Find(path);
  return record && record->close;
}

std::optional<FileStat> Pipeline::StatNow(const Watch& w, const std::string& path) const {
  EntryInfo entry = env_.Probe(w.config.name, RelativeTo(w.config.path, path));
  if (entry.kind == EntryKind::kRegular || entry.kind == EntryKind::kNotRegular) return entry.stat;
  return std::nullopt;
}

void Pipeline::Dispatch(Watch& w, const std::string& path) {
  const std::string relative = RelativeTo(w.config.path, path);
  if (relative.empty()) return;
  const EntryInfo entry = env_.Probe(w.config.name, relative);
  if (entry.kind == EntryKind::kSymlink) return ReportSymlink(w, path, relative);
  if (entry.kind == EntryKind::kSymlinkInPath) return;  // see OnFileEvent()
  std::optional<FileStat> stat;
  if (entry.kind == EntryKind::kRegular || entry.kind == EntryKind::kNotRegular) stat = entry.stat;
  if (PathRecord* record = w.paths.Find(path);
      stat && record && record->remembered && record->remembered->stat == *stat) {
    record->last_event_ns.reset();
    w.paths.Tidy(path);
    Log(LogLevel::kDebug, LogEvent::kVerifySkipped, {{"watch", w.config.name}, {"path", path}},
        "unchanged since its last verdict");
    return;
  }
  const bool needs_queue = entry.kind != EntryKind::kNotRegular;
  // First come, first served: behind files already waiting, or when full.
  if (needs_queue && (verifier_.Full() || (!w.blocked.empty() && !draining_))) return Block(w, path);
  w.settle->MarkInFlight(path);
  // Remember the version dispatched, so a later overflow rescan does not
  // verify the same write twice.
  PathRecord& record = w.paths[path];
  if (stat) record.seen = *stat;
  const std::int64_t event_ns = record.last_event_ns ? *record.last_event_ns : env_.RealtimeNs();
  record.dispatched = PathRecord::Dispatched{stat, event_ns, env_.Now()};
  record.last_event_ns.reset();
  VerifyJob job;
  job.watch = w.config.name;
  job.path = path;
  job.relative = relative;
  job.options.level = w.config.level;
  job.options.full_max_bytes = config_.verify.full_max_bytes;
  job.options.memory_budget = config_.verify.memory_limit / 2;
  if (entry.kind == EntryKind::kNotRegular) {
    // A FIFO, socket, device or directory named like a checkpoint: its
    // verdict needs no child and no queue slot (opening a FIFO would block).
    OpenedEntry unopened;
    unopened.kind = EntryKind::kNotRegular;
    unopened.st.st_mode = entry.mode;
    OnVerified(job, UnopenedResult(path, unopened, job.options.level));
    return;
  }
  if (!verifier_.Enqueue(std::move(job))) {
    w.settle->Finish(path);
    if (PathRecord* record = w.paths.Find(path)) record->dispatched.reset();
    Block(w, path);
  }
}

// ---- housekeeping ----------------------------------------------------------

std::string Pipeline::StaleReason(const Watch& w, Clock::time_point now) const {
  if (!w.stale || !w.config.expect_every) return "";
  // Whole seconds: "no good checkpoint for 1m1s", never "1m924ms".
  return "no good checkpoint for " +
         FormatDuration(duration_cast<std::chrono::seconds>(w.stale->Age(now))) +
         " (expect_every " + FormatDuration(*w.config.expect_every) + ")";
}

void Pipeline::OnTick() {
  if (stopping_) return;
  const Clock::time_point now = env_.Now();
  for (auto& [name, w] : watches_) {
    PublishFailing(*w);
    if (w->stale && w->config.expect_every)
      SetProblem(*w, WatchProblem::kStale, w->stale->Stale(now), StaleReason(*w, now));
    if (w->state == Watch::State::kMissing) {
      // Belt and braces for missed events (a watch that could not be added).
      if (w->missing && w->missing->Refresh() == MissingWatch::Step::kExists) Recovered(*w);
      continue;
    }
    // The root's descriptor keeps a deleted root's inode alive, and inotify
    // says IN_DELETE_SELF only when the inode goes: notice the deletion here.
    if (env_.RootDeleted(w->config.name)) {
      GoMissing(*w, "it was deleted");
      continue;
    }
    if (w->polling && w->baseline_done && !w->scan_running && now >= w->next_poll) {
      w->next_poll = now + w->config.poll_interval;
      ScheduleScan(*w, ScanReason::kPoll);
    } else if (!w->polling && !w->scan_running && w->pending_rescan) {
      const ScanReason reason = *w->pending_rescan;
      w->pending_rescan.reset();
      ScheduleScan(*w, reason);
    }
    PollUnwatched(*w, now);
    // The backlog has halved since writes were left out: find them again.
    if (w->overflowed &&
        w->settle->pending_count() + w->blocked.size() < limits_.max_pending_per_watch / 2) {
      w->overflowed = false;
      ScheduleScan(*w, ScanReason::kQueueFull);
    }
    CheckSpace(*w);
    if (now >= w->next_writable_check) CheckWritable(*w);
    if (config_.log.summary_every.count() > 0 && now >= w->next_summary) {
      if (w->next_summary.time_since_epoch().count() != 0) Summary(*w);
      w->next_summary = now + config_.log.summary_every;
    }
  }
  DrainBlocked();
  reporter_.Report(QueueLengthChanged{QueueLength()});
}

}  // namespace ckptwatch
