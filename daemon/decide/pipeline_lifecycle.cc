// The lifecycle of a watch: started (inotify or polling), missing (watching the nearest
// ancestor until the root appears), recovered, reconfigured or removed by a reload.
// Events, scans and dispatch: pipeline.cc; verdicts and problems: pipeline_verdict.cc.
#include <algorithm>
#include <cerrno>
#include <set>

#include "config/units.h"
#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"

namespace ckptwatch {

void Pipeline::Start() {
  for (const WatchConfig& wc : config_.watches) {
    auto w = std::make_unique<Watch>(limits_.max_remembered_per_watch);
    w->config = wc;
    if (auto saved = restored_.watches.find(wc.name); saved != restored_.watches.end())
      w->restored = std::move(saved->second);
    w->settle = std::make_unique<SettleQueue>(wc.settle, limits_.max_pending_per_watch);
    Watch& ref = *w;
    watches_[wc.name] = std::move(w);
    ApplyWatchConfig(ref, wc);
    NewSets(ref);
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
  w.runs.Apply(c);
  if (w.sets) w.sets->Apply(c);
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
      Log(LogLevel::kError, LogEvent::kBackendFallback, {{"watch", c.name}, {"path", c.path}, {"backend", "poll"}},
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
  w.created_during_baseline.clear();
  reporter_.Report(WatchBackendChanged{c.name, c.path, w.polling ? "poll" : "inotify"});
  SetProblem(w, WatchProblem::kMissingDirectory, false);
  CheckWritable(w);
  CheckSpace(w);
  Log(LogLevel::kInfo, LogEvent::kWatchStarted,
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
  w.unwatched.Clear();
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
  reporter_.Report(WatchBackendChanged{w.config.name, w.config.path, "none"});
  // A symlink someone other than root put where the root should be is not
  // followed (watch_root.h): the watch waits, as for a missing directory,
  // until a real directory is there.
  const std::string what = untrusted ? "is not a directory ckptwatch follows" : "does not exist";
  SetProblem(w, WatchProblem::kMissingDirectory, true, w.config.path + " " + what + " (" + why + ")");
  Log(LogLevel::kWarn, LogEvent::kWatchMissing,
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
  Log(LogLevel::kInfo, LogEvent::kWatchRecovered, {{"watch", w.config.name}, {"path", w.config.path}},
      "checkpoint directory exists now; watching it");
  w.paths.SetSeen({});
  w.verify_all_on_start = true;
  reporter_.Report(Rescanned{w.config.name, ScanReason::kRecovered, std::nullopt, std::nullopt});
  StartWatch(w);
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
    reporter_.Report(WatchRemoved{it->first, it->second->config.path});
    it = watches_.erase(it);
  }
  const std::set<std::string> restart(plan.restart_watches.begin(), plan.restart_watches.end());
  config_ = next;
  for (const WatchConfig& wc : config_.watches) {
    Watch* w = FindWatch(wc.name);
    if (!w) {
      auto fresh = std::make_unique<Watch>(limits_.max_remembered_per_watch);
      fresh->settle = std::make_unique<SettleQueue>(wc.settle, limits_.max_pending_per_watch);
      Watch& ref = *fresh;
      watches_[wc.name] = std::move(fresh);
      ApplyWatchConfig(ref, wc);
      NewSets(ref);
      StartWatch(ref);
      continue;
    }
    if (wc.run_depth != w->config.run_depth) ReportRuns(w->runs.Clear());
    ApplyWatchConfig(*w, wc);
    if (restart.count(wc.name)) {
      // Queued work is kept: pending paths stay in the settle queue. Sets start afresh (the
      // root may have moved): a judgement under way is dropped when it comes back.
      NewSets(*w);
      StopWatch(*w);
      StartWatch(*w);
    }
  }
  return true;
}

}  // namespace ckptwatch
