// Directories below a watch's root that have no inotify watch of their own (the watch limit
// reached, most likely): each is polled on its own every poll_interval while the rest of the
// watch keeps its events, so a full inotify table slows noticing down but loses nothing. One per
// watch; it says which polls are due and what a poll found, and the pipeline runs the scans,
// raises the degraded_watching problem and looks at the files (pipeline.cc).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "watch/poll_scanner.h"
#include "watch/snapshot.h"

namespace ckptwatch {

class UnwatchedDirs {
 public:
  using Clock = PollScanner::Clock;
  /// True when the daemon already knows `stat` as the version of `path` it saw.
  using Seen = std::function<bool(const std::string& path, const FileStat& stat)>;

  /// `relative` ("" the whole root) has no inotify watch: it is polled from now on, and its
  /// next poll is a baseline. Returns how many directories are polled.
  std::size_t Add(const std::string& relative, Clock::duration settle);
  /// `relative` is gone (its poll found no directory): it is polled no more.
  void Remove(const std::string& relative) { dirs_.erase(relative); }
  /// `relative` and every directory below it were deleted or renamed away.
  void ForgetUnder(const std::string& relative);
  /// Nothing is polled any more (the watch stopped). Polls under way still finish.
  void Clear() { dirs_.clear(); }
  bool empty() const { return dirs_.empty(); }
  std::size_t size() const { return dirs_.size(); }

  /// The directories to poll at `now`: every one whose last poll is over, once per `interval`.
  std::vector<std::string> Due(Clock::time_point now, Clock::duration interval);
  /// A poll of `relative` started.
  void Started(const std::string& relative) { running_.insert(relative); }
  /// A poll of `relative` finished. False when `relative` is polled no more: its result is
  /// for nobody.
  bool Finished(const std::string& relative);
  /// What a poll of `relative` taken at `now` found (the watch's own files only): the files to
  /// look at. The first poll after Add() returns every file `seen` does not know, since writes
  /// made before polling began made no event; later polls, the files that settled since.
  std::vector<std::string> Polled(const std::string& relative, const Snapshot& snapshot,
                                  Clock::time_point now, const Seen& seen);

 private:
  struct Dir {
    explicit Dir(Clock::duration settle) : poller(settle) {}
    PollScanner poller;
    bool baselined = false;  // its first poll is done
  };

  std::map<std::string, Dir> dirs_;
  std::set<std::string> running_;  // a poll under way, polled or not
  Clock::time_point next_poll_;
};

}  // namespace ckptwatch
