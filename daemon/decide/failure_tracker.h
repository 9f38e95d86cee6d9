// When a failed save is over, and how many files of a watch are failing now: one per watch,
// over the watch's remembered verdicts (path_record.h). The rules: failure_tracker.cc.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "decide/path_record.h"
#include "decide/pipeline_events.h"
#include "decide/status_snapshot.h"

namespace ckptwatch {

class FailureTracker {
 public:
  /// The run of a path of the watch ("" outside runs).
  using RunOf = std::function<std::string(const std::string& path)>;

  /// Remembered verdicts changed: the next Publish() counts again.
  void MarkChanged() { dirty_ = true; }
  /// An ok verdict of `path` (version `stat`) in `config`'s watch, at `now_unix`: ends
  /// `own_failure` (the file rewritten good) and every older failure of its run that is not
  /// part of the same save. True when a remembered verdict lost its cause.
  bool Resolve(PathTable& paths, const WatchConfig& config, const RunOf& run_of,
               const std::string& path, const FileStat& stat,
               const std::optional<ResolvedFailure>& own_failure, double now_unix);
  /// The failing-file counts of `watch` that changed since the last call (every count the
  /// first time); nothing when no remembered verdict changed.
  std::vector<FailingFilesChanged> Publish(const PathTable& paths, const std::string& watch,
                                           const RunOf& run_of);
  /// Failures that are over, newest first, at most StatusSnapshot::kMaxResolvedShown.
  const std::deque<ResolvedFailure>& resolved() const { return resolved_; }

 private:
  std::deque<ResolvedFailure> resolved_;
  // The counts last published, by (run, cause).
  std::map<std::pair<std::string, std::string>, std::size_t> published_;
  bool dirty_ = true;
};

}  // namespace ckptwatch
