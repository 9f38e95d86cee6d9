// The polling watch backend, for filesystems where inotify misses writes made
// by other machines (NFS, Lustre, GPFS, CephFS, SMB): scan, diff, settle.
// Also the scan the daemon runs after kDirectoryCreated or kOverflow.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ckptwatch {

/// What a scan records about a regular file.
struct FileStat {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t ino = 0;  ///< Changes when a file is atomically replaced.

  bool operator==(const FileStat&) const = default;
};

/// The regular files under a directory at one moment.
struct Snapshot {
  std::map<std::string, FileStat> files;  ///< By path.
  std::vector<std::string> unreadable;    ///< "path: cause" of subdirectories skipped.
};

/// How to scan. `filter` gets each regular file's path; unset keeps all.
struct ScanOptions {
  bool recursive = true;
  std::function<bool(const std::string& path)> filter;
};

/// Lists the regular files under `start` (relative; "" for the root itself)
/// beneath the directory `root_fd` into `*out`, as paths under `root_path`.
/// No symlink is followed, in `start` or below it: directories are opened
/// relative to their parent's descriptor. False with `*err` when `start`
/// itself cannot be read.
bool ScanDirectory(int root_fd, const std::string& root_path, const std::string& start,
                   const ScanOptions& options, Snapshot* out, std::string* err);

/// ScanDirectory() of `root` as open(2) finds it (a symlink named by the
/// caller is followed; nothing below it is).
bool ScanDirectory(const std::string& root, const ScanOptions& options, Snapshot* out,
                   std::string* err);

/// Paths in `after` that are new or whose size, mtime or inode differ from `before`.
std::vector<std::string> DiffSnapshots(const Snapshot& before, const Snapshot& after);

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

/// True when `path` is on a filesystem where inotify cannot see other
/// clients' writes (`backend: auto` then polls). `*fs_name` gets a name for
/// the log ("nfs", "ext4", "0x1234abcd"); false if statfs() fails.
bool IsNetworkFilesystem(const std::string& path, std::string* fs_name);

/// IsNetworkFilesystem() for a statfs() f_type value.
bool IsNetworkFilesystemType(std::int64_t f_type, std::string* fs_name);

}  // namespace ckptwatch
