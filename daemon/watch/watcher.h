// The watch backend's interface, cut at notification only (watchman's
// watcher/Watcher.h): start and stop watching; events come out as WatchEvent.
// Crawling, settling and everything downstream do not know which backend
// runs. InotifyWatcher implements it; the pipeline tests use a fake.
#pragma once

#include <cerrno>
#include <string>

namespace ckptwatch {

/// Why a watch could not be set up. `message` names the path, the cause and
/// the remedy, ready to log as is.
struct WatchError {
  int error = 0;  ///< errno: ENOSPC, ENOENT, ENOTDIR, EACCES, EMFILE, ...
  std::string message;

  /// The per-user watch limit was reached: the daemon should poll this watch.
  bool watch_limit() const { return error == ENOSPC; }
};

class Watcher {
 public:
  virtual ~Watcher() = default;
  /// Watches `root` (and, when `recursive`, every directory below it); events
  /// carry the returned id. -1 with `*err` set on failure.
  virtual int AddWatch(const std::string& root, bool recursive, WatchError* err) = 0;
  /// Stops watch `id`; its pending events are dropped.
  virtual void RemoveWatch(int id) = 0;
};

}  // namespace ckptwatch
