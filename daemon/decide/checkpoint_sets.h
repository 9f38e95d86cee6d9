// The daemon's checkpoint sets of one watch (issue 24): fed the pipeline's write events, it
// judges each set when SetTracker says it is ready and reports it — an `event=checkpoint` line,
// and for a set that is not ok a failed save with its cause (a CheckpointJudged event) — and says
// when a resume pointer names a broken set.
//
// The hook (the pipeline owns one per watch; nothing else in it changes):
//   Touch(w, path, when, closed)   -> w.sets->OnWrite(relative, when, closed)   (every path under
//                                     the root, before `patterns`: a set's files are not weights)
//   Forget / MovedAway(w, from)    -> w.sets->OnGone(relative)
//   OnSettleDue()                  -> w.sets->OnDue(env.Now())
//   NextDeadline()                 -> the earliest of w.sets->NextDeadline() too
//   ApplyWatchConfig(w, config)    -> w.sets->set_settle(config.checkpoint_settle)
// Members are verified as files by the pipeline as before; the set's judgement reads only
// indexes and sizes (bounded), no member is verified twice.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "decide/checkpoint_event.h"
#include "decide/set_tracker.h"

namespace ckptwatch {

class Reporter;  // pipeline_ports.h

/// Judges the sets of the directory `relative` below the watch root `root_fd` ("" for the root;
/// that directory alone, reached beneath the root, no symlink followed) and the resume pointers
/// in it, without verifying members as files: the events to log. Reads the disk.
std::vector<CheckpointEvent> JudgeSetDirectory(int root_fd, const std::string& root_path,
                                               const std::string& relative, Level level);
/// The same from the root's path.
std::vector<CheckpointEvent> JudgeSetDirectoryAt(const std::string& root_path,
                                                 const std::string& relative, Level level);

class CheckpointSets {
 public:
  using Clock = SetTracker::Clock;
  /// Judges one directory (`relative` below the root `root_path`) at `level`.
  using Judge = std::function<std::vector<CheckpointEvent>(
      const std::string& root_path, const std::string& relative, Level level)>;

  CheckpointSets(std::string watch, std::string root, const WatchConfig& config, Reporter& reporter,
                 Judge judge = JudgeSetDirectoryAt);

  void OnWrite(const std::string& relative, Clock::time_point now, bool closed) {
    tracker_.OnWrite(relative, now, closed);
  }
  void OnGone(const std::string& relative) { tracker_.OnGone(relative); }
  /// Judges and reports every set due at `now`.
  void OnDue(Clock::time_point now);
  std::optional<Clock::time_point> NextDeadline() const { return tracker_.NextDeadline(); }
  /// A reload: the watch's checkpoint_settle and level.
  void Apply(const WatchConfig& config);

 private:
  std::string watch_, root_;
  Level level_;
  Reporter& reporter_;
  Judge judge_;
  SetTracker tracker_;
};

}  // namespace ckptwatch
