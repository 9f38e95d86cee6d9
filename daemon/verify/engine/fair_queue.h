// The order in which waiting files get a verifier: one watch after another in
// turn, and within a watch one owner (st_uid) after another, each lane first
// in, first out. On a shared host one user's flood of files (or of slow ones)
// then delays another user's verdict by at most one file per busy lane, not by
// the length of the flood. Lanes are made when a job arrives and dropped when
// empty, so the turn order only ever holds lanes with work.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace ckptwatch {

/// `Job` has `std::string watch`, `std::string path` and `uid_t owner`.
template <typename Job>
class FairQueue {
 public:
  /// Adds `job` at the end of its lane (watch, owner). A job for a path that
  /// is already waiting replaces it in place, or moves to its new lane when
  /// the owner changed (latest write wins, its turn is kept).
  void Push(Job job);
  /// Puts `job` first in its lane, its watch and owner next in turn (a job
  /// that lost its verifier through no fault of its own). Nothing when its
  /// path is already waiting: that newer job covers it.
  void PushFront(Job job);
  /// The next job in turn; the lane it came from goes to the back of its watch's
  /// turn order and the watch to the back of the watches'.
  std::optional<Job> Pop();
  /// Drops every waiting job for which `drop(job)` is true.
  void EraseIf(const std::function<bool(const Job&)>& drop);

  std::size_t size() const { return paths_.size(); }
  bool contains(const std::string& path) const { return paths_.count(path) != 0; }
  bool empty() const { return paths_.empty(); }

 private:
  struct Lane {
    uid_t owner;
    std::deque<Job> jobs;
  };
  struct WatchLanes {
    std::string watch;
    std::list<Lane> lanes;  // front: the owner whose turn is next
  };
  using LaneRef =
      std::pair<typename std::list<WatchLanes>::iterator, typename std::list<Lane>::iterator>;

  LaneRef FindOrAddLane(const std::string& watch, uid_t owner);
  void DropIfEmpty(LaneRef ref);

  std::list<WatchLanes> watches_;  // front: the watch whose turn is next
  std::unordered_map<std::string, std::pair<std::string, uid_t>> paths_;  // path -> its lane
};

template <typename Job>
typename FairQueue<Job>::LaneRef FairQueue<Job>::FindOrAddLane(const std::string& watch,
                                                               uid_t owner) {
  auto w = watches_.begin();
  while (w != watches_.end() && w->watch != watch) ++w;
  // A watch new to the queue waits behind those already waiting, as does an owner.
  if (w == watches_.end()) w = watches_.insert(watches_.end(), WatchLanes{watch, {}});
  auto lane = w->lanes.begin();
  while (lane != w->lanes.end() && lane->owner != owner) ++lane;
  if (lane == w->lanes.end()) lane = w->lanes.insert(w->lanes.end(), Lane{owner, {}});
  return {w, lane};
}

template <typename Job>
void FairQueue<Job>::DropIfEmpty(LaneRef ref) {
  if (!ref.second->jobs.empty()) return;
  ref.first->lanes.erase(ref.second);
  if (ref.first->lanes.empty()) watches_.erase(ref.first);
}

template <typename Job>
void FairQueue<Job>::Push(Job job) {
  auto known = paths_.find(job.path);
  if (known != paths_.end()) {
    LaneRef ref = FindOrAddLane(known->second.first, known->second.second);
    for (Job& waiting : ref.second->jobs) {
      if (waiting.path != job.path) continue;
      if (job.watch == known->second.first && job.owner == known->second.second) {
        waiting = std::move(job);
        return;
      }
      std::erase_if(ref.second->jobs, [&](const Job& j) { return j.path == job.path; });
      break;
    }
    DropIfEmpty(ref);
    paths_.erase(known);
  }
  LaneRef ref = FindOrAddLane(job.watch, job.owner);
  paths_.emplace(job.path, std::make_pair(job.watch, job.owner));
  ref.second->jobs.push_back(std::move(job));
}

template <typename Job>
void FairQueue<Job>::PushFront(Job job) {
  if (paths_.count(job.path)) return;
  LaneRef ref = FindOrAddLane(job.watch, job.owner);
  ref.first->lanes.splice(ref.first->lanes.begin(), ref.first->lanes, ref.second);
  watches_.splice(watches_.begin(), watches_, ref.first);
  paths_.emplace(job.path, std::make_pair(job.watch, job.owner));
  ref.second->jobs.push_front(std::move(job));
}

template <typename Job>
std::optional<Job> FairQueue<Job>::Pop() {
  if (watches_.empty()) return std::nullopt;
  auto w = watches_.begin();
  auto lane = w->lanes.begin();
  Job job = std::move(lane->jobs.front());
  lane->jobs.pop_front();
  paths_.erase(job.path);
  if (lane->jobs.empty()) {
    w->lanes.erase(lane);
  } else {
    w->lanes.splice(w->lanes.end(), w->lanes, lane);
  }
  if (w->lanes.empty()) {
    watches_.erase(w);
  } else {
    watches_.splice(watches_.end(), watches_, w);
  }
  return job;
}

template <typename Job>
void FairQueue<Job>::EraseIf(const std::function<bool(const Job&)>& drop) {
  for (auto w = watches_.begin(); w != watches_.end();) {
    for (auto lane = w->lanes.begin(); lane != w->lanes.end();) {
      std::erase_if(lane->jobs, [&](const Job& job) {
        if (!drop(job)) return false;
        paths_.erase(job.path);
        return true;
      });
      lane = lane->jobs.empty() ? w->lanes.erase(lane) : std::next(lane);
    }
    w = w->lanes.empty() ? watches_.erase(w) : std::next(w);
  }
}

}  // namespace ckptwatch
