// One inotify instance per watch, each polled on the daemon's loop. The kernel
// queues events per instance (fs.inotify.max_queued_events) and reports
// IN_Q_OVERFLOW per instance: with one instance for every watch, a flood of
// files in one user's directory overflowed the queue another user's watch
// shares, and cost that watch a rescan and its alarm's timeliness. Apart, a
// storm overflows only its own watch.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "watch/inotify_watcher.h"
#include "watch/watch_event.h"
#include "watch/watcher.h"

namespace ckptwatch {

class InotifyWatchSet : public Watcher {
 public:
  /// Called on the loop with the events one instance had queued.
  using OnEvents = std::function<void(std::vector<WatchEvent>& events)>;
  /// Told when polling an instance failed: its watch is silent until removed.
  using OnPollError = std::function<void(int status)>;

  /// Creates the first instance now, so a machine where inotify cannot be had
  /// is known at start: nullptr and `*err` then (the daemon polls every watch).
  static std::unique_ptr<InotifyWatchSet> Create(uv_loop_t* loop, OnEvents on_events,
                                                 OnPollError on_poll_error, WatchError* err);
  ~InotifyWatchSet() override;
  InotifyWatchSet(const InotifyWatchSet&) = delete;
  InotifyWatchSet& operator=(const InotifyWatchSet&) = delete;

  /// InotifyWatcher::AddWatch() in an instance of its own. When no new instance
  /// can be had (fs.inotify.max_user_instances), the watch shares the last one.
  int AddWatch(const std::string& root, bool recursive, WatchError* err) override;
  void RemoveWatch(int id) override;

  /// Instances open now (each costs one of fs.inotify.max_user_instances).
  std::size_t instance_count() const { return instances_.size(); }
  /// Stops polling and closes every instance; its handles close on the next loop turn.
  void Close();

 private:
  struct Instance;
  InotifyWatchSet(uv_loop_t* loop, OnEvents on_events, OnPollError on_poll_error);
  Instance* Open(WatchError* err);
  void Read(Instance* instance);
  void CloseIfUnused(Instance* instance);

  uv_loop_t* loop_;
  OnEvents on_events_;
  OnPollError on_poll_error_;
  std::vector<Instance*> instances_;  // owned; freed when their poll handle closes
  struct Where {
    Instance* instance;
    int local_id;
  };
  std::map<int, Where> watches_;  // by the id AddWatch() returned
  int next_id_ = 1;
  Instance* spare_ = nullptr;  // opened by Create(), used by the first AddWatch()
};

}  // namespace ckptwatch
