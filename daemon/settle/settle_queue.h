// Paths waiting to be verified: written, then quiet for a settle period.
// Path-keyed like watchman's PendingCollection; the clock is an argument.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ckptwatch {

/// The pending set of one watch. A path written again within `settle` is
/// handed out once, for its final content; a path written again while it is
/// being verified is handed out again once Finish() says its verdict is stale.
class SettleQueue {
 public:
  using Clock = std::chrono::steady_clock;

  /// `max_paths` bounds pending plus in-flight paths; must be at least 1.
  SettleQueue(Clock::duration settle, std::size_t max_paths);

  /// Makes later Touch() calls, rewrites of pending paths included, wait `settle`; paths
  /// already pending keep their deadlines (for a config reload: no timer needs re-arming).
  void set_settle(Clock::duration settle) { settle_ = settle; }

  /// Records a write to `path` at `now`. False when the queue is full and
  /// `path` was dropped; TakeOverflow() then tells the daemon to rescan.
  bool Touch(const std::string& path, Clock::time_point now);

  /// Removes and returns the paths quiet for `settle` at `now`, earliest first.
  /// Never returns a path that is in flight.
  std::vector<std::string> Ready(Clock::time_point now);

  /// When Ready() will next return something, to arm a timer; nullopt if never.
  std::optional<Clock::time_point> NextDeadline() const;

  /// True while `path` waits for its settle time (it was written and not handed out since).
  bool IsPending(const std::string& path) const {
    auto it = entries_.find(path);
    return it != entries_.end() && it->second.pending;
  }

  /// `path` is being verified now.
  void MarkInFlight(const std::string& path);

  /// Verification of `path` ended. True when it was written again since
  /// MarkInFlight() or its Ready(): the verdict is stale and `path` is pending.
  bool Finish(const std::string& path);

  /// Forgets the pending writes of `path` and every path below it (renamed
  /// away: their new names are pending instead). In-flight paths stay in
  /// flight until Finish(), which then reports nothing stale.
  void DropPendingUnder(const std::string& path);

  /// True once after Touch() dropped paths because the queue was full.
  bool TakeOverflow();

  std::size_t pending_count() const { return queue_.size() + superseded_; }
  std::size_t in_flight_count() const { return in_flight_; }
  std::size_t dropped_total() const { return dropped_; }

 private:
  struct Entry {
    Clock::time_point deadline;
    bool pending = false;  // written and not handed out since
    bool in_flight = false;
  };

  Clock::duration settle_;
  std::size_t max_paths_;
  std::unordered_map<std::string, Entry> entries_;
  // Pending paths that are not in flight, by deadline: what Ready() pops.
  std::set<std::pair<Clock::time_point, std::string>> queue_;
  std::size_t in_flight_ = 0;
  std::size_t superseded_ = 0;  // pending and in flight
  std::size_t dropped_ = 0;
  bool overflow_ = false;
};

}  // namespace ckptwatch
