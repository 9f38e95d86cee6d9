// Watches, events, scans and dispatch. Verdicts and problems: pipeline_verdict.cc.
#include "decide/pipeline.h"

#include <algorithm>
#include <cerrno>
#include <set>

#include "config/units.h"
#include "decide/pipeline_watch.h"
#include "verify/verifier.h"
#include "watch/name_patterns.h"

namespace ckptwatch {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// Erases `path` and every key below it ("path/...") from a path-keyed map.
template <typename Map>
void EraseUnder(Map& map, const std::string& path) {
  map.erase(path);
  const std::string prefix = path + "/";
  auto it = map.lower_bound(prefix);
  while (it != map.end() && it->first.compare(0, prefix.size(), prefix) == 0) it = map.erase(it);
}

}  // namespace

std::string RelativeTo(const std::string& root, const std::string& path) {
  if (path.size() <= root.size() + 1 || path.compare(0, root.size(), root) != 0 ||
      path[root.size()] != '/')
    return "";
  return path.substr(root.size() + 1);
}

Pipeline::Pipeline(Config config, Env& env, Watcher* watcher, Scanner& scanner, Verifier& verifier,
                   Reporter& reporter, PipelineLimits limits)
    : config_(std::move(config)),
      env_(env),
      watcher_(watcher),
      scanner_(scanner),
      verifier_(verifier),
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
    auto deadline = w->settle->NextDeadline();
    if (deadline && (!next || *deadline < *next)) next = deadline;
  }
  return next;
}

// ---- watch lifecycle -------------------------------------------------------

void Pipeline::Start() {
  for (const WatchConfig& wc : config_.watches) {
    auto w = std::make_unique<Watch>();
    w->config = wc;
    if (auto saved = restored_.watches.find(wc.name); saved != restored_.watches.end())
      w->restored = std::move(saved->second);
    w->settle = std::make_unique<SettleQueue>(wc.settle, limits_.max_pending_per_watch);
    Watch& ref = *w;
    watches_[wc.name] = std::move(w);
    ApplyWatchConfig(ref, wc);
    StartWatch(ref);
  }
  restored_ = {};  // each watch took its part; the rest was for watches no longer configured
}

// The keys a running watch applies live (each config row says so).
void Pipeline::ApplyWatchConfig(Watch& w, const WatchConfig& c) {
  const auto now = env_.Now();
  // A shorter poll interval applies to the next poll, not after the old one.
  if (w.polling && c.poll_interval < w.config.poll_interval)
    w.next_poll = std::min(w.next_poll, now + c.poll_interval);
  w.config = c;
  w.settle->set_settle(c.settle);
  if (w.poller) w.poller->set_settle(c.settle);
  if (!c.expect_every) {
    w.stale.reset();
    // Without expect_every nothing could clear it later.
    if (w.problems.Active(std::string(WatchProblemName(WatchProblem::kStale))))
      SetProblem(w, WatchProblem::kStale, false);
  } else if (!w.stale) {
    w.stale.emplace(*c.expect_every, now);
  } else {
    w.stale->set_expect_every(*c.expect_every);
  }
}

void Pipeline::StartWatch(Watch& w) {
  const WatchConfig& c = w.config;
  std::string root_error;
  int root_errno = 0;
  if (!env_.OpenRoot(c.name, c.path, &root_error, &root_errno)) {
    GoMissing(w, root_error, root_errno == ELOOP);
    return;
  }
  w.state = Watch::State::kActive;
  std::string fs_name;
  bool network = env_.IsNetworkFilesystem(c.path, &fs_name);
  w.fs_name = fs_name;
  w.polling = c.backend == WatchBackend::kPoll || (c.backend == WatchBackend::kAuto && network) ||
              !watcher_;
  if (!w.polling) {
    WatchError err;
    w.watch_id = watcher_->AddWatch(c.path, c.recursive, &err);
    if (w.watch_id < 0) {
      if (err.error == ENOENT) {
        GoMissing(w, err.message);
        return;
      }
      Log(LogLevel::kError, "backend_fallback", {{"watch", c.name}, {"path", c.path}, {"backend", "poll"}},
          err.message);
      w.polling = true;
      if (err.watch_limit())
        SetProblem(w, WatchProblem::kDegradedWatching, true,
                   err.message + "; the whole watch is polled every " + FormatDuration(c.poll_interval));
    }
  }
  if (w.polling) {
    w.poller = std::make_unique<PollScanner>(c.settle);
    w.next_poll = env_.Now() + c.poll_interval;
  }
  w.baseline_done = false;
  reporter_.AddWatch(c.name, c.path, w.polling ? "poll" : "inotify");
  SetProblem(w, WatchProblem::kMissingDirectory, false);
  CheckWritable(w);
  CheckSpace(w);
  Log(LogLevel::kInfo, "watch_started",
      {{"watch", c.name}, {"path", c.path}, {"backend", w.polling ? "poll" : "inotify"},
       {"fs", fs_name}, {"recursive", c.recursive ? "true" : "false"},
       {"verify_level", std::string(LevelName(c.level))}},
      c.backend == WatchBackend::kAuto
          ? (network ? "network filesystem: polling, inotify cannot see other clients' writes"
                     : "local filesystem: inotify")
          : "");
  ScheduleScan(w, ScanReason::kStart);
}

void Pipeline::StopWatch(Watch& w) {
  // A fresh start may get every watch it needs (the limit raised meanwhile).
  w.unwatched.clear();
  SetProblem(w, WatchProblem::kDegradedWatching, false);
  if (watcher_) {
    if (w.watch_id >= 0) watcher_->RemoveWatch(w.watch_id);
    if (w.missing_id >= 0) watcher_->RemoveWatch(w.missing_id);
  }
  w.watch_id = w.missing_id = -1;
  w.poller.reset();
  env_.CloseRoot(w.config.name);  // a running scan keeps its own reference
}

void Pipeline::GoMissing(Watch& w, const std::string& why, bool untrusted) {
  StopWatch(w);
  w.state = Watch::State::kMissing;
  w.missing.emplace(w.config.path, [this](const std::string& p) { return env_.IsTrustedDirectory(p); });
  reporter_.AddWatch(w.config.name, w.config.path, "none");
  // A symlink someone other than root put where the root should be is not
  // followed (watch_root.h): the watch waits, as for a missing directory,
  // until a real directory is there.
  const std::string what = untrusted ? "is not a directory ckptwatch follows" : "does not exist";
  SetProblem(w, WatchProblem::kMissingDirectory, true, w.config.path + " " + what + " (" + why + ")");
  Log(LogLevel::kWarn, "watch_missing",
      {{"watch", w.config.name}, {"path", w.config.path}, {"waiting_on", w.missing->ancestor()}},
      "checkpoint directory " + what + " (" + why +
          "): a save into it fails with OSError [Errno 2]; watching " + w.missing->ancestor() +
          " until it appears");
  WatchAncestor(w);
}

void Pipeline::WatchAncestor(Watch& w) {
  // Walk down as far as the path already exists; a watch on the deepest
  // existing ancestor sees the next component appear.
  for (int guard = 0; guard < 64; ++guard) {
    MissingWatch::Step step = w.missing->Refresh();
    if (step == MissingWatch::Step::kExists) return Recovered(w);
    if (watcher_ && w.missing_id >= 0) watcher_->RemoveWatch(w.missing_id);
    w.missing_id = -1;
    if (!watcher_) return;  // the tick's Refresh() notices instead
    WatchError err;
    w.missing_id = watcher_->AddWatch(w.missing->ancestor(), false, &err);
    if (w.missing_id >= 0 && w.missing->Refresh() == MissingWatch::Step::kWait) return;
    if (w.missing_id < 0) return;  // raced with a deletion: the tick retries
  }
}

void Pipeline::Recovered(Watch& w) {
  if (watcher_ && w.missing_id >= 0) watcher_->RemoveWatch(w.missing_id);
  w.missing_id = -1;
  w.missing.reset();
  Log(LogLevel::kInfo, "watch_recovered", {{"watch", w.config.name}, {"path", w.config.path}},
      "checkpoint directory exists now; watching it");
  w.known.files.clear();
  w.verify_all_on_start = true;
  reporter_.Rescanned(w.config.name, ScanReason::kRecovered);
  StartWatch(w);
}

// ---- events ----------------------------------------------------------------

void Pipeline::OnWatchEvent(const WatchEvent& event) {
  if (stopping_) return;
  Watch* w = FindByWatchId(event.watch_id);
  if (!w) return;
  if (w->state == Watch::State::kMissing) return HandleMissingEvent(*w, event);
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
        SeeRun(*w, RunOf(*w, event.path, /*directory=*/true));
        ScheduleScan(*w, ScanReason::kNewDirectory, relative);
      }
      break;
    }
    case WatchEvent::Kind::kNameGone:
      if (!event.moved_to.empty()) MovedAway(*w, event.path, event.moved_to);
      RunGone(*w, event.path);
      Forget(*w, event.path);
      break;
    case WatchEvent::Kind::kDirectoryGone:
      if (event.path == w->config.path) GoMissing(*w, "it was deleted or moved away");
      else Forget(*w, event.path);
      break;
    case WatchEvent::Kind::kOverflow:
      Log(LogLevel::kWarn, "overflow", {{"watch", w->config.name}}, event.reason);
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

void Pipeline::HandleMissingEvent(Watch& w, const WatchEvent& event) {
  MissingWatch::Step step = MissingWatch::Step::kWait;
  if (event.kind == WatchEvent::Kind::kDirectoryCreated || event.kind == WatchEvent::Kind::kFileWritten)
    step = w.missing->OnEntry(event.path);
  else
    step = w.missing->Refresh();
  if (step == MissingWatch::Step::kExists) return Recovered(w);
  if (step == MissingWatch::Step::kMoveWatch || event.kind == WatchEvent::Kind::kDirectoryGone ||
      event.kind == WatchEvent::Kind::kOverflow)
    WatchAncestor(w);
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
  auto said = w.links_reported.find(path);
  if (said != w.links_reported.end() && said->second == target) return;
  w.links_reported[path] = target;
  const std::vector<LogField> fields = {{"watch", w.config.name}, {"path", path}, {"target", target}};
  switch (where) {
    case LinkTarget::kInside:
      // Lightning's last.ckpt, a Hugging Face snapshot: the target is a file
      // of this watch and gets its own verdict.
      Log(LogLevel::kDebug, "symlink_skipped", fields,
          "symlink to a file inside the watch; that file gets its own verdict");
      break;
    case LinkTarget::kDangling:
      Log(LogLevel::kWarn, "symlink_dangling", fields,
          "symlink to a checkpoint that does not exist: the save it points to failed or was deleted");
      break;
    case LinkTarget::kOutside:
      Log(LogLevel::kWarn, "symlink_outside", fields,
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
      Log(LogLevel::kWarn, "queue_full", {{"watch", w.config.name}},
          std::to_string(limits_.max_pending_per_watch) +
              " files are waiting in this watch: newer writes are picked up by a rescan once "
              "half of them are verified");
    w.overflowed = true;
    return;
  }
  SeeRun(w, RunOf(w, path));
  // A new write means the writer made progress: an earlier in_progress was
  // that save under way, not a save stuck open.
  w.in_progress_seen.erase(path);
  w.last_event_ns[path] = env_.RealtimeNs();
  Watch::Close& close = w.closes[path];
  close.closed = closed;
  close.writing = false;
  close.space.reset();
  FsSpace space;
  if (closed && env_.SpaceForFile(w.config.name, RelativeTo(w.config.path, path), &space)) close.space = space;
  if (!w.settle->Touch(path, when)) {
    w.closes.erase(path);
    w.last_event_ns.erase(path);
    w.overflowed = true;
  }
}

// A save under way: nothing to verify until its writer closes the file. Should
// the writer fall silent with the file still open instead, that is a hung save:
// the file is looked at once stuck_after has passed without a write (each
// write pushes the look back), and that look is its second (Judge).
void Pipeline::WriteUnderWay(Watch& w, const std::string& path) {
  auto close = w.closes.find(path);
  // A close already waits to be verified: the write after it is that save's, or the next one's
  // whose own close or silence comes later.
  if (close != w.closes.end() && close->second.closed && w.settle->IsPending(path)) return;
  Touch(w, path, env_.Now() + w.config.stuck_after - w.config.settle, /*closed=*/false);
  if (auto it = w.closes.find(path); it != w.closes.end()) it->second.writing = true;
}

// The name is gone (deleted, renamed away): what the daemon kept about it,
// and about everything below it if it was a directory, goes too. A pending
// path stays pending: its verdict says not_found if it is gone for good.
void Pipeline::Forget(Watch& w, const std::string& path) {
  state_dirty_ = true;
  w.failing_dirty = true;
  EraseUnder(w.known.files, path);
  EraseUnder(w.reported, path);
  CompactRemembered(w);
  EraseUnder(w.links_reported, path);
  EraseUnder(w.in_progress_seen, path);
  EraseUnder(w.repeats, path);
  if (!w.settle->IsPending(path) && !w.blocked_set.count(path)) {
    EraseUnder(w.last_event_ns, path);
    EraseUnder(w.closes, path);
  }
  const std::string relative = RelativeTo(w.config.path, path);
  if (!relative.empty() && !w.unwatched.empty()) {
    EraseUnder(w.unwatched, relative);
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
  Log(LogLevel::kError, "watch_failed", {{"watch", w.config.name}, {"path", event.path}},
      event.reason + "; polling it every " + FormatDuration(w.config.poll_interval) + " instead");
  auto& unwatched = w.unwatched[relative];
  if (!unwatched) unwatched = std::make_unique<PollScanner>(w.config.settle);
  const std::size_t n = w.unwatched.size();
  SetProblem(w, WatchProblem::kDegradedWatching, true,
             event.reason + "; " + std::to_string(n) + (n == 1 ? " directory is" : " directories are") +
                 " polled every " + FormatDuration(w.config.poll_interval) + " instead");
  w.unwatched_baselined.erase(relative);
  ScheduleScan(w, ScanReason::kDegradedPoll, relative);
}

void Pipeline::PollUnwatched(Watch& w, Clock::time_point now) {
  if (w.unwatched.empty() || now < w.next_degraded_poll) return;
  w.next_degraded_poll = now + w.config.poll_interval;
  for (const auto& [relative, poller] : w.unwatched)
    if (!w.unwatched_running.count(relative)) ScheduleScan(w, ScanReason::kDegradedPoll, relative);
}

void Pipeline::OnUnwatchedScan(Watch& w, const ScanResult& result, Clock::time_point now) {
  const std::string& relative = result.request.relative;
  w.unwatched_running.erase(relative);
  auto it = w.unwatched.find(relative);
  if (it == w.unwatched.end()) return;
  if (!result.ok) {
    if (result.error_code == ENOENT || result.error_code == ENOTDIR || result.error_code == ELOOP) {
      w.unwatched.erase(it);  // the directory went away: nothing left to poll
      if (w.unwatched.empty()) SetProblem(w, WatchProblem::kDegradedWatching, false);
    } else {
      Log(LogLevel::kError, "scan_failed", {{"watch", w.config.name}}, result.error);
    }
    return;
  }
  Snapshot snapshot;
  for (const auto& [path, stat] : result.snapshot.files)
    if (Wanted(w, path)) snapshot.files.emplace(path, stat);
  if (w.unwatched_baselined.insert(relative).second) {
    // Files written before polling began made no event: whatever differs
    // from what the daemon knew is new.
    it->second->Baseline(snapshot);
    for (const auto& [path, stat] : snapshot.files) {
      auto known = w.known.files.find(path);
      if (known == w.known.files.end() || !(known->second == stat)) Touch(w, path, now);
    }
    return;
  }
  for (const std::string& path : it->second->Update(snapshot, now)) Touch(w, path, now);
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
  if (degraded) w.unwatched_running.insert(subdir);
  scanner_.Scan(std::move(request));
}

void Pipeline::OnScanDone(const ScanResult& result) {
  Watch* w = FindWatch(result.request.watch);
  if (!w || stopping_) return;
  const ScanReason reason = result.request.reason;
  const Clock::time_point now = env_.Now();
  if (reason == ScanReason::kDegradedPoll) {
    if (w->state == Watch::State::kActive) OnUnwatchedScan(*w, result, now);
    else w->unwatched_running.erase(result.request.relative);
    return;
  }
  const bool whole_watch = result.request.relative.empty();
  if (whole_watch) w->scan_running = false;
  if (w->state != Watch::State::kActive) return;
  if (!result.ok) {
    if (whole_watch && !env_.IsTrustedDirectory(w->config.path)) return GoMissing(*w, result.error);
    // A new directory renamed away or swapped for a symlink before its scan
    // ran (a staging directory, say): nothing was lost, nothing to report.
    if (!whole_watch && (result.error_code == ENOENT || result.error_code == ENOTDIR ||
                         result.error_code == ELOOP || result.error_code == EXDEV)) {
      Log(LogLevel::kDebug, "scan_skipped", {{"watch", w->config.name}}, result.error);
      return;
    }
    Log(LogLevel::kError, "scan_failed",
        {{"watch", w->config.name},
         {"path", whole_watch ? w->config.path : w->config.path + "/" + result.request.relative}},
        result.error);
    return;
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
    for (const auto& [path, stat] : w->known.files)
      if (!snapshot.files.count(path) && !w->settle->IsPending(path)) gone.push_back(path);
    for (const std::string& path : gone) Forget(*w, path);
  }
  if (reason == ScanReason::kStart) {
    // Verify the newest checkpoint so state is known right after a restart;
    // the rest of the history is left alone.
    w->known = snapshot;
    if (w->poller) w->poller->Baseline(snapshot);
    w->baseline_done = true;
    SeedRuns(*w, snapshot);
    if (RestoreWatch(*w, snapshot)) return;
    if (w->verify_all_on_start) {
      w->verify_all_on_start = false;
      for (const auto& [path, stat] : snapshot.files) Touch(*w, path, now - w->config.settle);
      return;
    }
    auto newest = std::max_element(snapshot.files.begin(), snapshot.files.end(),
                                   [](const auto& a, const auto& b) { return a.second.mtime_ns < b.second.mtime_ns; });
    if (newest != snapshot.files.end()) w->settle->Touch(newest->first, now - w->config.settle);
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
    auto known = w->known.files.find(path);
    if (known != w->known.files.end() && known->second == stat) continue;
    // `known` changes when the file is dispatched, not here: a write left
    // out because the backlog is full is found again by the next rescan.
    Touch(*w, path, now);
    ++changed;
  }
  if (reason != ScanReason::kNewDirectory) {
    reporter_.Rescanned(w->config.name, reason);
    Log(LogLevel::kWarn, "rescan",
        {{"watch", w->config.name}, {"reason", std::string(ScanReasonName(reason))},
         {"files", std::to_string(snapshot.files.size())}, {"changed", std::to_string(changed)}});
  }
}

// ---- dispatch --------------------------------------------------------------

void Pipeline::OnSettleDue() {
  if (stopping_) return;
  DrainBlocked();
  const Clock::time_point now = env_.Now();
  for (auto& [name, w] : watches_)
    for (const std::string& path : w->settle->Ready(now)) Dispatch(*w, path);
  reporter_.SetQueueLength(QueueLength());
}

std::size_t Pipeline::QueueLength() const {
  std::size_t length = verifier_.waiting();
  for (const auto& [name, w] : watches_) length += w->blocked.size();
  return length;
}

// Backpressure: a settled file the verify queue has no room for waits here,
// in order, and goes when a verdict frees a place (DrainBlocked()).
void Pipeline::Block(Watch& w, const std::string& path) {
  if (!w.blocked_set.insert(path).second) return;
  if (w.blocked.empty())
    Log(LogLevel::kInfo, "queue_full", {{"watch", w.config.name}},
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
      w->blocked_set.erase(path);
      progress = true;
      if (w->settle->IsPending(path)) continue;  // written again: its settle decides
      Dispatch(*w, path);
    }
  }
  draining_ = false;
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
  auto reported = w.reported.find(path);
  if (stat && reported != w.reported.end() && reported->second.stat == *stat) {
    w.last_event_ns.erase(path);
    Log(LogLevel::kDebug, "verify_skipped", {{"watch", w.config.name}, {"path", path}},
        "unchanged since its last verdict");
    return;
  }
  const bool needs_queue = entry.kind != EntryKind::kNotRegular;
  // First come, first served: behind files already waiting, or when full.
  if (needs_queue && (verifier_.Full() || (!w.blocked.empty() && !draining_))) return Block(w, path);
  w.settle->MarkInFlight(path);
  // Remember the version dispatched, so a later overflow rescan does not
  // verify the same write twice.
  if (stat) w.known.files[path] = *stat;
  auto event = w.last_event_ns.find(path);
  w.dispatched[path] = {stat, event == w.last_event_ns.end() ? env_.RealtimeNs() : event->second,
                        env_.Now()};
  if (event != w.last_event_ns.end()) w.last_event_ns.erase(event);
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
    w.dispatched.erase(path);
    Block(w, path);
  }
}

// ---- housekeeping and reload -------------------------------------------------

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
  reporter_.SetQueueLength(QueueLength());
}

bool Pipeline::Reload(const Config& next, std::string* err) {
  const ReloadPlan plan = PlanReload(config_, next);
  if (!plan.blockers.empty()) {
    std::string keys;
    for (const std::string& k : plan.blockers) keys += (keys.empty() ? "" : ", ") + k;
    *err = "these keys cannot change without a restart: " + keys;
    return false;
  }
  std::set<std::string> next_names;
  for (const WatchConfig& wc : next.watches) next_names.insert(wc.name);
  for (auto it = watches_.begin(); it != watches_.end();) {
    if (next_names.count(it->first)) {
      ++it;
      continue;
    }
    StopWatch(*it->second);
    verifier_.DropWatch(it->first);
    reporter_.RemoveWatch(it->first);
    Log(LogLevel::kInfo, "watch_removed", {{"watch", it->first}, {"path", it->second->config.path}});
    it = watches_.erase(it);
  }
  const std::set<std::string> restart(plan.restart_watches.begin(), plan.restart_watches.end());
  config_ = next;
  for (const WatchConfig& wc : config_.watches) {
    Watch* w = FindWatch(wc.name);
    if (!w) {
      auto fresh = std::make_unique<Watch>();
      fresh->settle = std::make_unique<SettleQueue>(wc.settle, limits_.max_pending_per_watch);
      Watch& ref = *fresh;
      watches_[wc.name] = std::move(fresh);
      ApplyWatchConfig(ref, wc);
      StartWatch(ref);
      continue;
    }
    if (wc.run_depth != w->config.run_depth) DropRuns(*w);
    ApplyWatchConfig(*w, wc);
    if (restart.count(wc.name)) {
      // Queued work is kept: pending paths stay in the settle queue.
      StopWatch(*w);
      StartWatch(*w);
    }
  }
  return true;
}

}  // namespace ckptwatch
