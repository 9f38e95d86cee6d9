// The problems a watch is in (missing_directory, not_writable, low_space,
// stale, unreadable): each is logged once when it starts and once when it
// clears, not on every check.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace ckptwatch {

class ProblemSet {
 public:
  /// What a Set() call changed.
  enum class Change { kNone, kStarted, kCleared };

  /// Records whether `problem` is active (with its `reason`); returns the
  /// transition so the caller logs event=problem / problem_cleared once.
  Change Set(const std::string& problem, bool active, const std::string& reason = "");
  bool Active(const std::string& problem) const { return active_.count(problem) > 0; }
  /// The reason recorded when `problem` started.
  std::string Reason(const std::string& problem) const;
  /// Every active problem with its reason.
  const std::map<std::string, std::string>& active() const { return active_; }

 private:
  std::map<std::string, std::string> active_;  // problem -> reason
};

/// `stale`: no ok checkpoint within `expect_every`, counted from start (a
/// restart gives a run its full interval) or from the last ok verdict.
class StaleClock {
 public:
  using Clock = std::chrono::steady_clock;
  StaleClock(std::chrono::milliseconds expect_every, Clock::time_point start)
      : expect_every_(expect_every), since_(start) {}

  void Ok(Clock::time_point now) { since_ = now; }
  bool Stale(Clock::time_point now) const { return now - since_ > expect_every_; }
  /// Time since the last ok (or start).
  Clock::duration Age(Clock::time_point now) const { return now - since_; }
  void set_expect_every(std::chrono::milliseconds e) { expect_every_ = e; }

 private:
  std::chrono::milliseconds expect_every_;
  Clock::time_point since_;
};

}  // namespace ckptwatch
