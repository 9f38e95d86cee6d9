// What a scan saw: the regular files under a directory at one moment, and what changed between
// two such moments. Values only; scan_directory.h takes them, poll_scanner.h settles them.
#pragma once

#include <cstdint>
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

/// Paths in `after` that are new or whose size, mtime or inode differ from `before`.
std::vector<std::string> DiffSnapshots(const Snapshot& before, const Snapshot& after);

}  // namespace ckptwatch
