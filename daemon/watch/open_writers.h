// Whether some process still holds a file open for writing: how the daemon
// tells "the writer closed its file and is gone" from "a writer still has it
// open" when a close event arrives for an incomplete file.
//
// The question is asked about the one file, never the whole machine: a read
// lease (fcntl F_SETLEASE F_RDLCK) is granted only while no descriptor
// anywhere has the inode open for writing, and is given back at once, so
// the answer costs two system calls whatever other users hold open (a user
// with a million descriptors once cost every check a 7.8 s walk of /proc on
// the daemon's loop). The lease needs the file's owner or CAP_LEASE; where
// neither is had, or the filesystem has no leases (NFS, some FUSE), a walk
// of /proc answers instead, bounded per uid (see OpenWriterIndex).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "watch/open_writers_answer.h"

namespace ckptwatch {

/// The lease probe alone: kNone or kSome, nullopt when no lease can be taken
/// here (EACCES/EPERM without ownership or CAP_LEASE, EINVAL on a filesystem
/// without leases). `fd` must be open read-only; the lease is released before
/// returning, so a writer opening the file meanwhile waits microseconds.
std::optional<OpenWriters> ProbeWritersByLease(int fd);

class OpenWriterIndex {
 public:
  using Clock = std::chrono::steady_clock;

  explicit OpenWriterIndex(Clock::duration max_age = std::chrono::milliseconds(500))
      : max_age_(max_age) {}

  /// Whether the regular file open read-only at `fd`, whose stat is `st`, is
  /// open for writing; `*who` names a holder ("pid 123 (python3)") where one
  /// is found cheaply, else "a process". The lease answers first; the /proc
  /// walk (a snapshot younger than `max_age` taken after `not_before`, so a
  /// burst of files costs one walk) only where no lease can be had.
  /// `now` is the time the rate of holder names is counted on.
  OpenWriters Query(int fd, const struct stat& st, Clock::time_point not_before, std::string* who,
                    Clock::time_point now = Clock::now());

  /// Descriptors of one uid a walk looks at, at most: a uid holding more costs
  /// the walk this many, and a writer among the rest is kUnknown, not kNone.
  static constexpr std::size_t kMaxDescriptorsPerUid = 4096;
  /// Holder names looked up per second at most (each a walk of the owner's
  /// processes, bounded as above); past it the holder is "a process".
  static constexpr int kNamesPerSecond = 4;

  /// What one walk of /proc/*/fd found: each inode open for writing with one
  /// holder named.
  struct Walk {
    std::map<std::pair<dev_t, ino_t>, std::string> writers;
    bool visible = false;   ///< Other users' descriptors could be seen.
    bool complete = false;  ///< No uid's descriptors were left unvisited (kMaxDescriptorsPerUid).
  };
  /// Walks the processes of `only_uid` (all when unset), at most
  /// kMaxDescriptorsPerUid descriptors of each uid, stopping early once
  /// `stop_at` is found. The fallback where no lease can be taken.
  static Walk WalkProc(std::optional<uid_t> only_uid,
                       std::optional<std::pair<dev_t, ino_t>> stop_at);

 private:
  std::string NameHolder(const struct stat& st, Clock::time_point now);

  Clock::duration max_age_;
  Clock::time_point taken_{};
  bool valid_ = false;
  Walk snapshot_;
  Clock::time_point name_window_{};
  int names_in_window_ = 0;
};

}  // namespace ckptwatch
