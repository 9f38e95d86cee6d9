// The control vocabulary of a watch: the problems it can have and why it is
// rescanned. One list each, shared by the pipeline, the metrics (label
// values), the log and docs/metrics.md — never strings parsed back.
#pragma once

#include <string_view>

namespace ckptwatch {

/// A condition of a whole watch, reported once when it starts and once when it clears.
enum class WatchProblem {
  kMissingDirectory,  ///< The watch root does not exist (or is a symlink not followed).
  kNotWritable,       ///< The configured writer cannot create files there.
  kLowSpace,          ///< Free space below min_free, or below 1.5x the last good checkpoint.
  kStale,             ///< No good checkpoint for longer than expect_every.
  kUnreadable,        ///< A configured reader cannot read the last checkpoint.
  kDegradedWatching,  ///< Some directories have no inotify watch (the limit): they are polled.
};

inline constexpr WatchProblem kAllWatchProblems[] = {
    WatchProblem::kMissingDirectory, WatchProblem::kNotWritable, WatchProblem::kLowSpace,
    WatchProblem::kStale, WatchProblem::kUnreadable, WatchProblem::kDegradedWatching};

/// The metric label and log value, e.g. "missing_directory".
std::string_view WatchProblemName(WatchProblem problem);

/// Why a watch (or part of it) is scanned.
enum class ScanReason {
  kStart,         ///< The watch (re)started: a baseline, and the newest file is verified.
  kPoll,          ///< The polling backend's periodic scan.
  kOverflow,      ///< The inotify queue overflowed: events were lost.
  kWatchFailed,   ///< A new subdirectory could not be watched.
  kQueueFull,     ///< A burst outgrew the settle or verify queue.
  kNewDirectory,  ///< A directory appeared: files written before its watch existed.
  kRecovered,     ///< A missing root appeared (counted; the scan itself is kStart).
  kDegradedPoll,  ///< The periodic scan of a directory that has no inotify watch.
};

/// The metric label and log value, e.g. "queue_full".
std::string_view ScanReasonName(ScanReason reason);

}  // namespace ckptwatch
