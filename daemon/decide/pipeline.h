// The daemon's decision core: watch → settle → verify → decide → report.
//
// A Pipeline holds every watch's state and decides what happens to each
// event, scan result, verdict and tick. It never blocks, never touches the
// disk or the clock itself (Env), and acts only through its ports
// (Watcher, Scanner, Verifier, SetJudge, Reporter). The libuv loop (daemon.cc) feeds
// it inputs and arms a timer at NextDeadline(); the pipeline tests drive it
// with fakes and a virtual clock, one input at a time.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "decide/env.h"
#include "decide/outcome.h"
#include "decide/pipeline_ports.h"
#include "decide/saved_state.h"
#include "decide/status_snapshot.h"

namespace ckptwatch {

/// Bounds on what the pipeline remembers per watch; tests shrink them.
struct PipelineLimits {
  /// Paths pending (settling or waiting for the verify queue) before new
  /// writes are left to a rescan once the backlog halves.
  std::size_t max_pending_per_watch = 100000;
  /// Last verdicts remembered (to skip a close without a write); the oldest go first.
  std::size_t max_remembered_per_watch = 100000;
};

class Pipeline {
 public:
  using Clock = Env::Clock;

  /// `watcher` may be null: every watch polls. Nothing happens until Start().
  Pipeline(Config config, Env& env, Watcher* watcher, Scanner& scanner, Verifier& verifier,
           SetJudge& set_judge, Reporter& reporter, PipelineLimits limits = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Before Start(): what a previous run saved (state_file.h). A watch whose
  /// root is unchanged then verifies only files that changed since.
  void Restore(SavedState state) { restored_ = std::move(state); }
  /// The last verdict of each remembered file, for the state file.
  SavedState Saved() const;
  /// True once after verdicts or names changed: time to save again.
  bool TakeStateDirty() { return std::exchange(state_dirty_, false); }

  /// Starts every configured watch.
  void Start();
  /// Stops deciding: later inputs are ignored (the loop is shutting down).
  void Stop() { stopping_ = true; }

  /// One notification from the Watcher.
  void OnWatchEvent(const WatchEvent& event);
  /// A scan the Scanner finished.
  void OnScanDone(const ScanResult& result);
  /// A verdict from the Verifier for `job`.
  void OnVerified(const VerifyJob& job, const VerifyResult& result);
  /// A judgement of checkpoint sets the SetJudge finished (pipeline_sets.cc).
  void OnSetsJudged(const SetJudgeResult& result);
  /// Dispatches every file whose settle time has come. Call at NextDeadline().
  void OnSettleDue();
  /// Housekeeping, once a second: polling, missing roots, stale, space.
  void OnTick();
  /// Applies `next` (SIGHUP). False with `*err` when a changed key needs a
  /// process restart; the running configuration is then kept whole.
  bool Reload(const Config& next, std::string* err);

  /// When OnSettleDue() must run next; nullopt when nothing is pending.
  std::optional<Clock::time_point> NextDeadline() const;
  /// "watching 2 directories, 1 missing; 0 verifying, 3 queued".
  std::string Status() const;
  /// Every watch's state for `ckptwatch status` (pipeline_status.cc).
  StatusSnapshot CurrentStatus() const;
  const Config& config() const { return config_; }

 private:
  struct Watch;

  void StartWatch(Watch& w);
  void StopWatch(Watch& w);
  void GoMissing(Watch& w, const std::string& why, bool untrusted = false);
  void WatchAncestor(Watch& w);
  void Recovered(Watch& w);
  void ApplyWatchConfig(Watch& w, const WatchConfig& config);

  void HandleMissingEvent(Watch& w, const WatchEvent& event);
  void OnFileEvent(Watch& w, const std::string& path);
  void ReportSymlink(Watch& w, const std::string& path, const std::string& relative);
  /// A write to `path`; `closed` when the event was its writer's close or rename.
  void Touch(Watch& w, const std::string& path, Clock::time_point when, bool closed = false);
  bool Wanted(const Watch& w, const std::string& path) const;
  void Forget(Watch& w, const std::string& path);
  /// `from` (a file or directory) was renamed to `to` within the watch.
  void MovedAway(Watch& w, const std::string& from, const std::string& to);
  void WatchFailed(Watch& w, const WatchEvent& event);
  void PollUnwatched(Watch& w, Clock::time_point now);
  void OnUnwatchedScan(Watch& w, const ScanResult& result, Clock::time_point now);
  void ScheduleScan(Watch& w, ScanReason reason, const std::string& subdir = "");
  void Dispatch(Watch& w, const std::string& path);
  void Block(Watch& w, const std::string& path);
  /// A file is being written (created or modified, not closed): a look after stuck_after of
  /// silence.
  void WriteUnderWay(Watch& w, const std::string& path);
  void DrainBlocked();
  /// Records the verdict a file has now; `outcome`, when given, what `status` says of it.
  void Remember(Watch& w, const std::string& path, const FileStat& stat, std::string_view verdict,
                const std::string& cause, const Outcome* outcome = nullptr);
  /// Gives the reporter the failing-file counts of `w` when they changed (failure_tracker.h).
  void PublishFailing(Watch& w);
  /// RunTracker::Of() for the paths of `w` (the FailureTracker asks it).
  std::function<std::string(const std::string&)> RunsOf(const Watch& w) const;
  bool RestoreWatch(Watch& w, const Snapshot& snapshot);
  // Checkpoint sets (pipeline_sets.cc).
  /// A file or directory event of `w` for the set tracker, before `patterns`.
  void SetEvent(Watch& w, const WatchEvent& event);
  /// Starts the judgements of `w` due at `now`.
  void JudgeDueSets(Watch& w, Clock::time_point now);
  /// A fresh set tracker for `w` (its start, or a restart that may have moved its root).
  void NewSets(Watch& w);
  /// The failed save's cause of a broken set: its members' own, when they have one.
  std::string MemberCause(const Watch& w, const CheckpointEvent& e) const;
  void Judge(Watch& w, const VerifyJob& job, const VerifyResult& result);
  /// A broken verdict on a file found without its writer's close (a rescan, a poll) that a
  /// process still holds open for writing: looked at again in a moment. True when deferred.
  bool DeferBrokenWhileWriterHoldsIt(Watch& w, const VerifyJob& job, const VerifyResult& result,
                                     Clock::time_point dispatched_at, Clock::time_point now);
  /// verify_deferred (`result`'s reason, then `why`), and `job`'s file looked at again `delay`
  /// from `now`.
  void LookAgain(Watch& w, const VerifyJob& job, const VerifyResult& result,
                 const std::string& why, std::chrono::milliseconds delay, Clock::time_point now);
  Outcome Report(Watch& w, const VerifyJob& job, const VerifyResult& result, OutcomeInput input);
  /// The stale problem's reason at `now`: computed when asked, never frozen when it started.
  std::string StaleReason(const Watch& w, Clock::time_point now) const;
  std::size_t QueueLength() const;
  std::optional<FileStat> StatNow(const Watch& w, const std::string& path) const;
  bool HasWriteEvent(const Watch& w, const std::string& path) const;

  void SetProblem(Watch& w, WatchProblem problem, bool active, const std::string& reason = "");
  void CheckWritable(Watch& w);
  void CheckSpace(Watch& w);
  void Summary(Watch& w);

  Watch* FindWatch(const std::string& name);
  Watch* FindByWatchId(int id);
  void Log(LogLevel level, LogEvent event, EventFields fields, std::string msg = "") {
    AddRunField(&fields);
    reporter_.Report(Logged{level, event, std::move(fields), std::move(msg)});
  }

  // Runs (pipeline_runs.cc; each watch's RunTracker decides them).
  /// Hands the reporter what a watch's RunTracker says changed, in order.
  void ReportRuns(std::vector<PipelineEvent> events);
  /// A per-file line (a `path` below a run) names the run after the watch.
  void AddRunField(EventFields* fields) const;

  Config config_;
  Env& env_;
  Watcher* watcher_;
  Scanner& scanner_;
  Verifier& verifier_;
  SetJudge& set_judge_;
  Reporter& reporter_;
  PipelineLimits limits_;
  std::map<std::string, std::unique_ptr<Watch>> watches_;
  bool stopping_ = false;
  bool draining_ = false;
  bool state_dirty_ = false;
  std::uint64_t next_judge_id_ = 0;
  SavedState restored_;
};

}  // namespace ckptwatch
