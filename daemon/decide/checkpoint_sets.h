// The daemon's checkpoint sets of one watch (issue 24): fed the pipeline's write events, it says
// which directories are due to be judged (SetTracker) and keeps track of the judgements under
// way, which run off the loop through the SetJudge port (pipeline_ports.h); the pipeline
// reports what comes back (pipeline_sets.cc).
//
// The pipeline owns one per watch:
//   a file event (before `patterns`: a set's files are not weights) -> OnWrite(relative, ...)
//   a directory created or renamed into place                       -> OnArrived(relative, ...)
//   a name deleted or renamed away                                  -> OnGone(relative)
//   OnSettleDue() -> TakeDue(now) -> SetJudge::Judge(); OnSetsJudged() -> Accept()
//   NextDeadline() -> the earliest of NextDeadline() too; a reload -> Apply(config)
// Members are verified as files by the pipeline as before; the set's judgement reads only
// indexes and sizes (bounded), no member is verified twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "decide/checkpoint_event.h"
#include "decide/pipeline_ports.h"
#include "decide/set_tracker.h"

namespace ckptwatch {

/// Judges the sets of the directory `relative` below the watch root `root_fd` ("" for the root;
/// that directory alone, reached beneath the root, no symlink followed) and the resume pointers
/// in it, without verifying members as files: one event per set and per pointer. Reads the
/// disk: never on the loop.
std::vector<CheckpointEvent> JudgeSetDirectory(int root_fd, const std::string& root_path,
                                               const std::string& relative, Level level);
/// The same with what the pipeline's verifier already said of members (SetJudgeRequest).
std::vector<CheckpointEvent> JudgeSetDirectory(int root_fd, const SetJudgeRequest& request);

class CheckpointSets {
 public:
  using Clock = SetTracker::Clock;

  CheckpointSets(std::string watch, std::string root, const WatchConfig& config);

  void OnWrite(const std::string& relative, Clock::time_point now, bool closed) {
    tracker_.OnWrite(relative, now, closed);
  }
  /// The directory `relative` appeared (mkdir, or a staging directory renamed into place).
  void OnArrived(const std::string& relative, Clock::time_point now) {
    tracker_.OnArrived(relative, now);
  }
  void OnGone(const std::string& relative) { tracker_.OnGone(relative); }
  /// The judgements to start at `now`, ids taken from `*next_id`. A directory whose judgement
  /// is still under way is not judged twice at once: it is due again when that one is back.
  /// One for which `busy` is true (its files still settling or being verified: their verdicts
  /// are part of the judgement) waits, rechecked every kBusyRecheck, at most checkpoint_settle.
  std::vector<SetJudgeRequest> TakeDue(
      Clock::time_point now, std::uint64_t* next_id,
      const std::function<bool(const std::string& dir)>& busy = nullptr);
  static constexpr std::chrono::milliseconds kBusyRecheck{200};
  /// A verdict or a scan came: the directories waiting for their files are rechecked at `now`.
  void Recheck(Clock::time_point now) {
    for (const auto& [dir, since] : busy_since_) tracker_.MarkDue(dir, now);
  }
  /// A judgement came back at `now`: true when it is one this watch waits for (its events are
  /// then to be reported); false for one it forgot (a reload restarted it, say).
  bool Accept(const SetJudgeRequest& request, Clock::time_point now);
  std::optional<Clock::time_point> NextDeadline() const { return tracker_.NextDeadline(); }
  /// A reload: the watch's checkpoint_settle, settle and level.
  void Apply(const WatchConfig& config);
  std::size_t in_flight() const { return in_flight_.size(); }

 private:
  std::string watch_, root_;
  Level level_;
  SetTracker tracker_;
  std::map<std::string, std::uint64_t> in_flight_;  ///< Directory -> the request's id.
  std::set<std::string> again_;  ///< Due while in flight: judged again once it is back.
  std::chrono::milliseconds max_wait_;
  std::map<std::string, Clock::time_point> busy_since_;  ///< Due, waiting for its files' verdicts.
};

}  // namespace ckptwatch
