// Runs under one watch (run_depth): which run a path belongs to, which runs have series now
// (at most max_runs, the least recently active expiring first), and what `status` shows per
// run. One per watch; it reports nothing itself but returns the RunAdded and RunRemoved events
// its changes mean, in order, for the pipeline to hand the reporter (pipeline_runs.cc).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "decide/pipeline_events.h"
#include "decide/status_snapshot.h"
#include "watch/snapshot.h"

namespace ckptwatch {

class RunTracker {
 public:
  /// RunAdded and RunRemoved events, in the order they happened.
  using Events = std::vector<PipelineEvent>;

  /// Takes the watch's name, root, run_depth and max_runs (at its start and on every reload).
  void Apply(const WatchConfig& config);

  /// The run of `path`: its run_depth-th component below the root, "" when none. A file needs a
  /// directory at that depth; a `directory` may be the run itself.
  std::string Of(const std::string& path, bool directory = false) const;
  /// A file of `run` was written or verified: it has series from now on, and the least
  /// recently active runs past max_runs expire. Nothing for "".
  Events See(const std::string& run);
  /// `path` was deleted or renamed away: when it was a run's directory, the run is over.
  Events Gone(const std::string& path);
  /// Every run is over (run_depth changed).
  Events Clear();
  /// The runs of a start scan's files, the max_runs most recently written, so that each run's
  /// first failure is an increase from 0.
  Events Seed(const Snapshot& snapshot);

  /// The last good checkpoint of `run` ("" is no run: not kept); it goes with the run.
  void SetLastGood(const std::string& run, const WatchStatus::LastGood& good);
  /// The newest complete checkpoint set of `run` ("": the watch's own); it goes with the run.
  void SetComplete(const std::string& run, const WatchStatus::CompleteSet& set);
  const std::map<std::string, WatchStatus::LastGood>& last_good() const { return last_good_; }
  const std::map<std::string, WatchStatus::CompleteSet>& complete() const { return complete_; }
  /// True when `run` has series now.
  bool Has(const std::string& run) const { return active_.count(run) > 0; }

 private:
  std::string watch_, root_;
  int depth_ = 0, max_runs_ = 0;
  // Runs with series now, each with the order of its last activity.
  std::map<std::string, std::uint64_t> active_;
  std::uint64_t seq_ = 0;
  std::map<std::string, WatchStatus::LastGood> last_good_;
  std::map<std::string, WatchStatus::CompleteSet> complete_;
};

}  // namespace ckptwatch
