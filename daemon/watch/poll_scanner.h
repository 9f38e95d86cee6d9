// The polling watch backend, for filesystems where inotify misses writes made by other machines
// (NFS, Lustre, GPFS, CephFS, SMB): successive scans (scan_directory.h) in, settled files out.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "watch/snapshot.h"

namespace ckptwatch {

/// Turns successive snapshots into "this file is written": a file counts as
/// written once its size, mtime and inode are unchanged across snapshots at
/// least `settle` apart, and is reported once per version.
class PollScanner {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PollScanner(Clock::duration settle) : settle_(settle) {}

  /// Makes file versions first seen from the next Update() on wait `settle`; files already
  /// waiting keep the settle they started with, as SettleQueue::set_settle() does.
  void set_settle(Clock::duration settle) { settle_ = settle; }

  /// Files in `snapshot` count as already handled: only later changes report.
  void Baseline(const Snapshot& snapshot);

  /// Records `snapshot`, taken at `now`; returns the files that just settled.
  std::vector<std::string> Update(const Snapshot& snapshot, Clock::time_point now);

  /// Files seen changing that have not settled yet.
  std::size_t unsettled_count() const;

 private:
  struct Tracked {
    FileStat stat;
    Clock::time_point since;   // first snapshot with this stat
    Clock::duration settle{};  // settle_ when this stat was first seen
    bool reported = false;
  };

  Clock::duration settle_;
  std::map<std::string, Tracked> tracked_;
};

}  // namespace ckptwatch
