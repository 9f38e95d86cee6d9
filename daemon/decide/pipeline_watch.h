// The state the pipeline keeps per watch. Internal to pipeline*.cc.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "missing_watch.h"
#include "pipeline.h"
#include "poll_scanner.h"
#include "problem_set.h"
#include "settle_queue.h"

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
  std::map<std::string, int> in_progress_seen;  // path -> consecutive in_progress verdicts
  // What a file looked like when its verification was dispatched, and when
  // the write event that triggered it arrived (CLOCK_REALTIME ns).
  struct Dispatched {
    std::optional<FileStat> stat;
    std::int64_t event_ns = 0;
  };
  std::map<std::string, Dispatched> dispatched;
  std::map<std::string, std::int64_t> last_event_ns;
  // The version each path had when its last verdict was reported: a
  // close-write with no write in between (HDF5 opens O_RDWR and closes a file
  // before truncating it) is not a new checkpoint.
  std::map<std::string, FileStat> reported;
  // Symlinks already reported (path -> target), so each is said once.
  std::map<std::string, std::string> links_reported;
  Clock::time_point next_writable_check;
};

/// `path` relative to the watch root `root`, or "" when it is not below it.
std::string RelativeTo(const std::string& root, const std::string& path);

}  // namespace ckptwatch
