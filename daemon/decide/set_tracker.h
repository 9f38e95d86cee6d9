// When a checkpoint set in a watch is ready to be judged (issue 24; docs/checkpoint-sets.md).
//
// A set is judged once per save: as soon as its commit point (set_names.h: .metadata, *.index,
// saved_model.pb, an HF index, trainer_state.json, latest, ...) is closed by its writer, or else
// once `checkpoint_settle` has passed since the last write to any of its members with none of
// them still open for writing (a layout whose commit point lives elsewhere, like DeepSpeed's
// SAVE_DIR/latest, or a save that stopped before it). Pure state: the pipeline feeds it write
// events and the clock, and judges the directories TakeDue() returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ckptwatch {

class SetTracker {
 public:
  using Clock = std::chrono::steady_clock;
  /// At most this many directories wait at once; writes to others are not tracked until some
  /// are judged (counted in dropped()).
  static constexpr std::size_t kMaxDirs = 10000;

  explicit SetTracker(std::chrono::milliseconds settle) : settle_(settle) {}
  /// A reload: applies to the next write.
  void set_settle(std::chrono::milliseconds settle) { settle_ = settle; }

  /// A write to `relative` (a path below the watch root) at `now`; `closed` when the event was
  /// its writer's close or its rename into place. False when the name takes no part in a set.
  bool OnWrite(const std::string& relative, Clock::time_point now, bool closed);
  /// `relative` was deleted or renamed away: it no longer holds its set open.
  void OnGone(const std::string& relative);
  /// The directories (relative, "" for the root) to judge now, each once; they are forgotten
  /// until written again.
  std::vector<std::string> TakeDue(Clock::time_point now);
  /// When TakeDue() has something next; nullopt when nothing waits on the clock.
  std::optional<Clock::time_point> NextDeadline() const;
  std::size_t waiting() const { return dirs_.size(); }
  std::size_t dropped() const { return dropped_; }

 private:
  struct Dir {
    Clock::time_point last_write;
    std::set<std::string> open;  ///< Members written and not yet closed.
    bool committed = false;      ///< Its commit point was closed.
  };
  std::chrono::milliseconds settle_;
  std::map<std::string, Dir> dirs_;
  std::size_t dropped_ = 0;
};

}  // namespace ckptwatch
