// The state the pipeline keeps per watch. Internal to pipeline*.cc.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "decide/checkpoint_sets.h"
#include "decide/failure_tracker.h"
#include "decide/path_record.h"
#include "decide/pipeline.h"
#include "decide/problem_set.h"
#include "decide/run_tracker.h"
#include "decide/status_snapshot.h"
#include "decide/unwatched_dirs.h"
#include "settle/settle_queue.h"
#include "watch/missing_watch.h"
#include "watch/poll_scanner.h"

namespace ckptwatch {

struct Pipeline::Watch {
  explicit Watch(std::size_t max_remembered) : paths(max_remembered) {}

  /// Everything kept about each path: one record per path (path_record.h).
  PathTable paths;
  WatchConfig config;
  enum class State { kActive, kMissing } state = State::kActive;
  bool polling = false;
  std::string fs_name;
  int watch_id = -1;    // the Watcher's id for the root
  std::optional<MissingWatch> missing;
  int missing_id = -1;  // the Watcher's id for the ancestor of a missing root
  std::unique_ptr<SettleQueue> settle;
  std::unique_ptr<PollScanner> poller;
  Clock::time_point next_poll;
  std::optional<ScanReason> pending_rescan;  // a rescan waiting for the running scan
  bool scan_running = false;
  bool baseline_done = false;
  // Directories created while the first scan ran: that scan lists their files too,
  // but they are new — the directory's own scan, not the baseline, decides them.
  std::set<std::string> created_during_baseline;
  bool verify_all_on_start = false;  // a directory that just appeared: all of it is new
  std::uint64_t ok_total = 0, failed_total = 0;
  std::optional<double> last_good_time;
  std::uint64_t last_good_bytes = 0;
  std::string last_good_path;
  Clock::time_point next_summary;
  ProblemSet problems;
  std::optional<StaleClock> stale;
  // Settled paths waiting for room in the verify queue (backpressure), in order.
  std::deque<std::string> blocked;  // each with PathRecord::blocked
  bool overflowed = false;  // the pending set hit its bound: rescan once it drains
  // Directories below the root that have no inotify watch (the watch limit),
  // each polled on its own; "" is the whole root.
  UnwatchedDirs unwatched;
  // Failures that are over, and the failing-file counts last reported.
  FailureTracker failures;
  Clock::time_point next_writable_check;
  std::optional<SavedWatch> restored;  // until the start scan has used it
  // Runs with series now (run_depth), and each run's last good checkpoint and complete set.
  RunTracker runs;
  // Checkpoint sets: which directories are due to be judged, which judgements are under way;
  // the resume pointers that name a broken set now.
  std::unique_ptr<CheckpointSets> sets;
  std::size_t subdir_scans = 0;  // scans of new directories under way
  std::set<std::string> broken_pointers;
};

/// `path` relative to the watch root `root`, or "" when it is not below it.
std::string RelativeTo(const std::string& root, const std::string& path);

}  // namespace ckptwatch
