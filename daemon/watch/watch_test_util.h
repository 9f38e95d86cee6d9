// Test helpers for the watch layer (temporary directories and real writes: base/temp_dir.h):
// waiting for inotify events with poll() and a deadline (never a fixed sleep).
#pragma once

#include <poll.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "base/temp_dir.h"
#include "watch/inotify_watcher.h"

namespace ckptwatch::testing {

/// Reads events from `watcher` until `done(events so far)` holds or
/// `timeout` passes; returns everything read.
inline std::vector<WatchEvent> WaitForEvents(
    InotifyWatcher& watcher, const std::function<bool(const std::vector<WatchEvent>&)>& done,
    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::vector<WatchEvent> events;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done(events)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    struct pollfd pfd = {watcher.fd(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) > 0) watcher.ReadEvents(&events);
  }
  return events;
}

/// Whether `events` holds one of `kind` at `path`.
inline bool Has(const std::vector<WatchEvent>& events, WatchEvent::Kind kind,
                const std::string& path) {
  for (const WatchEvent& e : events) {
    if (e.kind == kind && e.path == path) return true;
  }
  return false;
}

/// How many of `events` are of `kind` at `path`.
inline int Count(const std::vector<WatchEvent>& events, WatchEvent::Kind kind,
                 const std::string& path) {
  int n = 0;
  for (const WatchEvent& e : events) n += e.kind == kind && e.path == path;
  return n;
}

/// Writes `marker` and reads until its event arrives. inotify keeps events in
/// order, so everything caused before the marker has been read by then: the
/// way to show an event did not happen without waiting for a timeout. The
/// kFileWriting events of saves under way are left out unless `with_writing`.
inline std::vector<WatchEvent> ReadThroughMarker(InotifyWatcher& watcher, const std::string& marker,
                                                 bool with_writing = false) {
  WriteFile(marker);
  std::vector<WatchEvent> events =
      WaitForEvents(watcher, [&](const std::vector<WatchEvent>& events) {
        return Has(events, WatchEvent::Kind::kFileWritten, marker);
      });
  if (!with_writing)
    std::erase_if(events,
                  [](const WatchEvent& e) { return e.kind == WatchEvent::Kind::kFileWriting; });
  return events;
}

}  // namespace ckptwatch::testing
