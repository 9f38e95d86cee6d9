// The state the pipeline keeps per watch. Internal to pipeline*.cc.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "decide/pipeline.h"
#include "decide/problem_set.h"
#include "decide/status_snapshot.h"
#include "settle/settle_queue.h"
#include "watch/missing_watch.h"
#include "watch/poll_scanner.h"

namespace ckptwatch {

struct Pipeline::Watch {
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
  bool verify_all_on_start = false;  // a directory that just appeared: all of it is new
  Snapshot known;  // what the last scan saw, plus files dispatched since
  std::uint64_t ok_total = 0, failed_total = 0;
  std::optional<double> last_good_time;
  std::uint64_t last_good_bytes = 0;
  std::string last_good_path;
  Clock::time_point next_summary;
  ProblemSet problems;
  std::optional<StaleClock> stale;
  std::map<std::string, int> in_progress_seen;  // path -> incomplete verdicts in a row
  // How the last write event of a pending path came: its writer's close or
  // rename (inotify), and the free space at that moment — the cause of a
  // failed save is what the filesystem looked like when it failed.
  struct Close {
    bool closed = false;
    // Written, not closed, then silent for stuck_after (inotify): the look is the second.
    bool writing = false;
    std::optional<FsSpace> space;
  };
  std::map<std::string, Close> closes;
  // The failure last logged for a path, to log a repeat once per
  // log.repeat_every: "again, ×N since HH:MM".
  struct Repeat {
    std::string key;  // verdict/cause
    double first_unix = 0;
    std::uint64_t count = 0;
    Clock::time_point last_logged;
  };
  std::map<std::string, Repeat> repeats;
  // Settled paths waiting for room in the verify queue (backpressure), in order.
  std::deque<std::string> blocked;
  std::set<std::string> blocked_set;
  bool overflowed = false;  // the pending set hit its bound: rescan once it drains
  // Directories below the root that have no inotify watch (the watch limit),
  // each polled on its own; "" is the whole root.
  std::map<std::string, std::unique_ptr<PollScanner>> unwatched;
  std::set<std::string> unwatched_baselined;  // first poll done
  std::set<std::string> unwatched_running;    // a scan under way
  Clock::time_point next_degraded_poll;
  // What a file looked like when its verification was dispatched, and when
  // the write event that triggered it arrived (CLOCK_REALTIME ns).
  struct Dispatched {
    std::optional<FileStat> stat;
    std::int64_t event_ns = 0;
    Clock::time_point at;  // when it was handed to the verifier
  };
  std::map<std::string, Dispatched> dispatched;
  // Dispatched paths whose name was then renamed within the watch (a staging
  // directory moved into place): their verdict describes a name that no
  // longer exists and is dropped; the new name is verified on its own.
  std::set<std::string> moved_away;
  std::map<std::string, std::int64_t> last_event_ns;
  // The version each path had when its last verdict was reported: a
  // close-write with no write in between (HDF5 opens O_RDWR and closes a file
  // before truncating it) is not a new checkpoint.
  struct Reported {
    FileStat stat;
    std::uint64_t seq = 0;  // order of remembering, for the bound
    std::string verdict, cause;
    std::string reason;                           // a failure's verify message, for `status`
    std::optional<LoadProblemFile> load_problem;  // an ok file that may not load
  };
  std::map<std::string, Reported> reported;
  // Failures that are over (pipeline_failing.cc), newest first, bounded: what
  // `ckptwatch status` shows as history.
  std::deque<ResolvedFailure> resolved;
  // The failing-file counts last given to the reporter, by (run, cause).
  std::map<std::pair<std::string, std::string>, std::size_t> failing_published;
  bool failing_dirty = true;  // `reported` changed since they were counted
  std::uint64_t reported_seq = 0;
  std::deque<std::pair<std::uint64_t, std::string>> reported_order;  // oldest first
  // Symlinks already reported (path -> target), so each is said once.
  std::map<std::string, std::string> links_reported;
  Clock::time_point next_writable_check;
  std::optional<SavedWatch> restored;  // until the start scan has used it
  // Runs with series now (run_depth), each with the order of its last activity.
  std::map<std::string, std::uint64_t> runs;
  // Each run's last good checkpoint, for `ckptwatch status`; goes with the run.
  std::map<std::string, WatchStatus::LastGood> run_last_good;
  std::uint64_t run_seq = 0;
};

/// `path` relative to the watch root `root`, or "" when it is not below it.
std::string RelativeTo(const std::string& root, const std::string& path);

}  // namespace ckptwatch
