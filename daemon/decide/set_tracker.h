// When a checkpoint set in a watch is ready to be judged (issue 24; docs/checkpoint-sets.md).
//
// A set is judged once per save: as soon as its commit point (set_names.h: .metadata, *.index,
// saved_model.pb, an HF index, trainer_state.json, latest, ...) is closed by its writer, or else
// once `checkpoint_settle` has passed since the last write to any of its members with none of
// them still open for writing (a layout whose commit point lives elsewhere, like DeepSpeed's
// SAVE_DIR/latest, or a save that stopped before it). A directory that appears whole (a staging
// directory renamed into place: the Trainer's tmp-checkpoint-N, Orbax's) is judged once the
// watch's `settle` has passed with nothing written into it. Pure state: the pipeline feeds it write
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

  /// `settle` is checkpoint_settle; `arrival_settle` the quiet a directory that appeared needs.
  explicit SetTracker(std::chrono::milliseconds settle,
                      std::chrono::milliseconds arrival_settle = std::chrono::milliseconds(0))
      : settle_(settle), arrival_settle_(arrival_settle) {}
  /// A reload: applies to the next write.
  void set_settle(std::chrono::milliseconds settle,
                  std::chrono::milliseconds arrival_settle = std::chrono::milliseconds(0)) {
    settle_ = settle;
    arrival_settle_ = arrival_settle;
  }

  /// A write to `relative` (a path below the watch root) at `now`; `closed` when the event was
  /// its writer's close or its rename into place. False when the name takes no part in a set.
  bool OnWrite(const std::string& relative, Clock::time_point now, bool closed);
  /// The directory `relative` appeared at `now` (mkdir, or renamed into place whole).
  void OnArrived(const std::string& relative, Clock::time_point now);
  /// `relative` was deleted or renamed away: it no longer holds its set open; when it was a
  /// directory, nothing in or below it is judged.
  void OnGone(const std::string& relative);
  /// The directory `relative` is due at `now` (a write that came while it was being judged).
  void MarkDue(const std::string& relative, Clock::time_point now);
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
    bool arrived = false;        ///< Appeared whole, nothing written into it since.
  };
  Dir* Track(const std::string& dir);
  std::chrono::milliseconds Quiet(const Dir& d) const;
  std::chrono::milliseconds settle_, arrival_settle_;
  std::map<std::string, Dir> dirs_;
  std::size_t dropped_ = 0;
};

}  // namespace ckptwatch
