#include "decide/watch_problem.h"

namespace ckptwatch {

std::string_view WatchProblemName(WatchProblem problem) {
  switch (problem) {
    case WatchProblem::kMissingDirectory: return "missing_directory";
    case WatchProblem::kNotWritable: return "not_writable";
    case WatchProblem::kLowSpace: return "low_space";
    case WatchProblem::kStale: return "stale";
    case WatchProblem::kUnreadable: return "unreadable";
    case WatchProblem::kDegradedWatching: return "degraded_watching";
  }
  return "unknown";
}

std::string_view ScanReasonName(ScanReason reason) {
  switch (reason) {
    case ScanReason::kStart: return "start";
    case ScanReason::kPoll: return "poll";
    case ScanReason::kOverflow: return "overflow";
    case ScanReason::kWatchFailed: return "watch_failed";
    case ScanReason::kQueueFull: return "queue_full";
    case ScanReason::kNewDirectory: return "new_directory";
    case ScanReason::kRecovered: return "recovered";
    case ScanReason::kDegradedPoll: return "degraded_poll";
  }
  return "unknown";
}

}  // namespace ckptwatch
