// Everything the pipeline asks of the machine: the clock, the watch roots and
// what lies beneath them, free space, access checks (ninja's DiskInterface,
// redis's monotonic clock). Production code uses RealEnv (real_env.h); the
// pipeline tests use an in-memory one whose clock they advance.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "base/beneath_entry.h"
#include "config/config.h"
#include "decide/save_cause.h"
#include "watch/open_writers_answer.h"
#include "watch/snapshot.h"

namespace ckptwatch {

/// What a name beneath a watch root is now.
struct EntryInfo {
  EntryKind kind = EntryKind::kMissing;
  FileStat stat;      ///< For kRegular and kNotRegular.
  mode_t mode = 0;    ///< For kRegular and kNotRegular: the file type bits.
};

class Env {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~Env() = default;

  /// The monotonic clock every deadline is measured on.
  virtual Clock::time_point Now() const = 0;
  /// Wall-clock time, for timestamps people read (seconds since the epoch).
  virtual double UnixNow() const = 0;
  /// Wall-clock time in nanoseconds, comparable with file mtimes.
  virtual std::int64_t RealtimeNs() const = 0;

  /// Opens watch `watch`'s root at `path` (watch_root.h: only root-owned
  /// symlinks on the way) and keeps it for Probe()/ResolveLink(). False with
  /// `*err` and `*error` (ENOENT/ENOTDIR: not there; ELOOP: untrusted symlink).
  virtual bool OpenRoot(const std::string& watch, const std::string& path, std::string* err,
                        int* error) = 0;
  /// Forgets watch `watch`'s root.
  virtual void CloseRoot(const std::string& watch) = 0;
  /// True when the root kept for `watch` was deleted (its link count is 0).
  virtual bool RootDeleted(const std::string& watch) const = 0;
  /// What `relative` beneath `watch`'s root is (ProbeBeneath: no symlink followed).
  virtual EntryInfo Probe(const std::string& watch, const std::string& relative) const = 0;
  /// Where the symlink at `relative` beneath `watch`'s root leads (ResolveLink).
  virtual LinkTarget ResolveSymlink(const std::string& watch, const std::string& relative,
                                    std::string* text) const = 0;
  /// Whether some process holds the regular file `relative` beneath `watch`'s
  /// root open for writing (open_writers.h), as seen at `since` or later;
  /// `*who` names one.
  virtual OpenWriters WritersOf(const std::string& watch, const std::string& relative,
                                Clock::time_point since, std::string* who) const = 0;
  /// IsTrustedDirectory(): a directory OpenRoot() would accept.
  virtual bool IsTrustedDirectory(const std::string& path) const = 0;

  /// IsNetworkFilesystem().
  virtual bool IsNetworkFilesystem(const std::string& path, std::string* fs_name) const = 0;
  /// StatSpace(): free and total bytes of the filesystem holding `path`.
  virtual bool StatSpace(const std::string& path, FsSpace* out) const = 0;
  /// The space left for the regular file `relative` beneath `watch`'s root
  /// to grow: its filesystem's (statvfs), or its owner's disk quota when
  /// that leaves less (FsSpace::quota says so). False when unknown.
  virtual bool SpaceForFile(const std::string& watch, const std::string& relative, FsSpace* out) const = 0;
  /// WhyCannotRead() / WhyCannotCreateIn(): "" when the principal can.
  virtual std::string WhyCannotRead(const std::string& path, const Principal& reader) const = 0;
  virtual std::string WhyCannotCreateIn(const std::string& dir, const Principal& writer) const = 0;
};

}  // namespace ckptwatch
