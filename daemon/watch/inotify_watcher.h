// The inotify watch backend. Not libuv's uv_fs_event: on Linux it never
// reports IN_CLOSE_WRITE and drops IN_Q_OVERFLOW without a word.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "watch/watch_event.h"
#include "watch/watcher.h"

struct inotify_event;

namespace ckptwatch {

/// One inotify instance holding any number of directory watches. The daemon
/// polls fd() for readability (uv_poll_t) and calls ReadEvents().
///
/// Recursion is done here, not by the caller: when a directory appears under
/// a recursive watch it is watched, with everything below it, before
/// ReadEvents() returns its kDirectoryCreated. The caller must then scan that
/// directory recursively, because files written before the watch existed
/// produce no event. Symbolic links are never followed below a watch root.
///
/// Trouble is an event, never silence: on IN_Q_OVERFLOW the watches are first
/// brought back in line with the tree, then each watch gets kOverflow (rescan
/// it), or kDirectoryGone if its root went away meanwhile. A new directory
/// that cannot be watched (ENOSPC, EACCES) is kWatchFailed: that watch now
/// misses writes, so the daemon should remove it and poll instead.
class InotifyWatcher : public Watcher {
 public:
  /// Opens an instance (IN_NONBLOCK | IN_CLOEXEC); nullptr and `*err` if it cannot.
  static std::unique_ptr<InotifyWatcher> Create(WatchError* err);
  ~InotifyWatcher();
  InotifyWatcher(const InotifyWatcher&) = delete;
  InotifyWatcher& operator=(const InotifyWatcher&) = delete;

  /// The descriptor to poll for readability.
  int fd() const { return fd_; }

  /// Watches directory `root` (followed if it is a symlink: the user named it)
  /// and, if `recursive`, every directory below it. Event paths start with
  /// `root` as given, so pass it absolute and normalised. Returns the watch id
  /// that events carry, or -1 with `*err` set and nothing left watched.
  int AddWatch(const std::string& root, bool recursive, WatchError* err) override;

  /// Stops watch `watch_id`; events already queued for it are dropped.
  void RemoveWatch(int watch_id) override;

  /// Reads until the kernel has nothing queued (EAGAIN), appending to `*out`.
  void ReadEvents(std::vector<WatchEvent>* out);

  /// Directories holding a kernel watch; each costs one fs.inotify.max_user_watches.
  std::size_t directory_count() const { return dirs_.size(); }

 private:
  struct Root {
    std::string path;
    bool recursive = false;
  };
  struct Dir {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
    bool is_root = false;        // reached through a root path, which may be a symlink
    std::vector<int> watch_ids;  // several when watch roots nest
  };

  explicit InotifyWatcher(int fd);
  bool WatchTree(int watch_id, const std::string& top, bool is_root, WatchError* err);
  int WatchDirectory(int watch_id, const std::string& path, bool is_root, WatchError* err);
  void DropWatchId(int watch_id);
  void ForgetSubtree(const std::string& path);
  static bool StillAt(const Dir& dir);
  void Resync(const std::string& reason, std::vector<WatchEvent>* out);
  void Handle(const struct inotify_event& event, std::vector<WatchEvent>* out);

  int fd_;
  int next_watch_id_ = 1;
  // Within one ReadEvents(): the kNameGone events (indices into its output)
  // of each IN_MOVED_FROM by cookie, given `moved_to` when the IN_MOVED_TO comes.
  std::map<std::uint32_t, std::vector<std::size_t>> moves_;
  std::map<int, Root> roots_;  // by watch id
  std::map<int, Dir> dirs_;    // by kernel watch descriptor
};

/// The ENOSPC message: names fs.inotify.max_user_watches, its `current` value
/// (-1: unknown) and a value to raise it to.
std::string FormatWatchLimitError(const std::string& path, long current);

/// What to raise fs.inotify.max_user_watches to from `current`.
long SuggestedMaxUserWatches(long current);

/// The integer in /proc/sys/fs/inotify/`name`, or -1 if it cannot be read.
long ReadInotifySysctl(const std::string& name);

}  // namespace ckptwatch
