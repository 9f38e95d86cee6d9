// What a watch keeps about one of its paths, in one record, and the table of them (one per
// watch, pipeline_watch.h). Forgetting a path is one call, and a new piece of per-path state
// is one field here — not another map that every place forgetting a path must know about.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "decide/env.h"
#include "decide/save_cause.h"
#include "decide/status_snapshot.h"
#include "watch/poll_scanner.h"

namespace ckptwatch {

/// One path's state. It has two lifetimes: what is known about the file (its scan stat, last
/// verdict, repeat count, symlink target) goes when its name goes; the write in flight (its
/// event, close, wait for the queue, dispatch) stays until its verdict, even when the name
/// goes first — a checkpoint deleted before its verdict still gets one (not_found).
struct PathRecord {
  using Clock = Env::Clock;

  // ---- what is known about the file: forgotten with its name --------------------------------

  /// What the last scan saw, or the version dispatched since: a rescan verifies what differs.
  std::optional<FileStat> seen;
  /// Incomplete verdicts (in_progress, empty) in a row: the first gets a second look.
  int incomplete_verdicts = 0;
  /// Whether a writer held the file at that last incomplete look. One holding it at the next
  /// look when none did then has reopened it: a save under way, not the same one hung.
  bool writer_at_last_look = false;
  /// The version the last verdict was reported for: a close with no write in between (HDF5
  /// opens O_RDWR and closes a file before truncating it) is not a new checkpoint.
  struct Remembered {
    FileStat stat;
    std::uint64_t seq = 0;  // order of remembering, for the bound
    std::string verdict, cause;
    std::string reason;                           // a failure's verify message, for `status`
    std::optional<LoadProblemFile> load_problem;  // an ok file that may not load
  };
  /// Set and cleared only through PathTable (it counts them for the bound).
  std::optional<Remembered> remembered;
  /// The failure last logged, to log a repeat once per log.repeat_every: "again, ×N since HH:MM".
  struct Repeat {
    std::string key;  // verdict/cause
    double first_unix = 0;
    std::uint64_t count = 0;
    Clock::time_point last_logged;
  };
  std::optional<Repeat> repeat;
  /// The target of a symlink already reported, so each link is said once.
  std::optional<std::string> link_target;

  // ---- the write in flight: until its verdict -------------------------------------------------

  /// When the last write event arrived (CLOCK_REALTIME ns).
  std::optional<std::int64_t> last_event_ns;
  /// How the last write event came: its writer's close or rename (inotify), and the free space
  /// at that moment — the cause of a failed save is what the filesystem looked like then.
  struct Close {
    bool closed = false;
    /// Written, not closed, then silent for stuck_after (inotify): the look is the second.
    bool writing = false;
    std::optional<FsSpace> space;
  };
  std::optional<Close> close;
  /// Settled, waiting in Watch::blocked for room in the verify queue.
  bool blocked = false;
  /// What the file looked like when its verification was dispatched, and when the write event
  /// that triggered it arrived (CLOCK_REALTIME ns).
  struct Dispatched {
    std::optional<FileStat> stat;
    std::int64_t event_ns = 0;
    Clock::time_point at;  // when it was handed to the verifier
  };
  std::optional<Dispatched> dispatched;
  /// Dispatched, then renamed within the watch (a staging directory moved into place): its
  /// verdict describes a name that no longer exists and is dropped.
  bool moved_away = false;

  /// Drops what is known about the file (its name is gone).
  void ForgetKnown();
  /// Drops the last write event and how it came.
  void ForgetWriteEvent() {
    last_event_ns.reset();
    close.reset();
  }
  /// Nothing left: the record can go.
  bool Empty() const;
};

/// The records of one watch, by path, and the bound on remembered verdicts.
class PathTable {
 public:
  using Map = std::map<std::string, PathRecord>;

  /// At most `max_remembered` verdicts are remembered; the oldest go first.
  explicit PathTable(std::size_t max_remembered) : max_remembered_(max_remembered) {}

  /// The record of `path`, made when there is none.
  PathRecord& operator[](const std::string& path) { return records_[path]; }
  PathRecord* Find(const std::string& path);
  const PathRecord* Find(const std::string& path) const;
  /// Erases the record of `path` when nothing is left in it.
  void Tidy(const std::string& path);

  /// Records `remembered` as the last verdict of `path`, forgetting the oldest past the bound.
  void Remember(const std::string& path, PathRecord::Remembered remembered);
  /// `path` and every path below it ("path/...") are gone: what is known about them goes;
  /// their last write event too unless `keep_write_event`; writes in flight stay.
  void Forget(const std::string& path, bool keep_write_event);
  /// Calls `visit(path, record)` for `path` and every path below it.
  template <typename Visit>
  void ForEachUnder(const std::string& path, Visit visit) {
    if (auto it = records_.find(path); it != records_.end()) visit(it->first, it->second);
    const std::string prefix = path + "/";
    for (auto it = records_.lower_bound(prefix);
         it != records_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      visit(it->first, it->second);
  }
  /// What a scan saw is now what is known to exist (`seen` of every other path is dropped).
  void SetSeen(const Snapshot& snapshot);

  Map::iterator begin() { return records_.begin(); }
  Map::iterator end() { return records_.end(); }
  Map::const_iterator begin() const { return records_.begin(); }
  Map::const_iterator end() const { return records_.end(); }
  std::size_t remembered_count() const { return remembered_; }

 private:
  void Compact();

  Map records_;
  std::size_t max_remembered_;
  std::size_t remembered_ = 0;  // records with `remembered`
  std::uint64_t seq_ = 0;
  std::deque<std::pair<std::uint64_t, std::string>> order_;  // oldest first, stale entries too
};

}  // namespace ckptwatch
