// Listing the regular files beneath a watch root by descriptor, never following a symlink: the
// polling backend's scan, and the rescan the daemon runs after kDirectoryCreated or kOverflow.
#pragma once

#include <functional>
#include <string>

#include "watch/snapshot.h"

namespace ckptwatch {

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

}  // namespace ckptwatch
