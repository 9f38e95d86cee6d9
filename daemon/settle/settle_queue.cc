#include "settle/settle_queue.h"

#include <algorithm>

namespace ckptwatch {

SettleQueue::SettleQueue(Clock::duration settle, std::size_t max_paths)
    : settle_(settle), max_paths_(std::max<std::size_t>(max_paths, 1)) {}

bool SettleQueue::Touch(const std::string& path, Clock::time_point now) {
  auto it = entries_.find(path);
  if (it == entries_.end()) {
    if (entries_.size() >= max_paths_) {
      ++dropped_;
      overflow_ = true;
      return false;
    }
    it = entries_.emplace(path, Entry{}).first;
  }
  Entry& entry = it->second;
  if (entry.in_flight) {
    // Not eligible until Finish(): two verifications of one path at once
    // would race, and the running one is about to be discarded anyway.
    if (!entry.pending) ++superseded_;
  } else if (entry.pending) {
    queue_.erase({entry.deadline, path});
  }
  entry.pending = true;
  entry.deadline = now + settle_;
  if (!entry.in_flight) queue_.emplace(entry.deadline, path);
  return true;
}

std::vector<std::string> SettleQueue::Ready(Clock::time_point now) {
  std::vector<std::string> ready;
  while (!queue_.empty() && queue_.begin()->first <= now) {
    auto node = queue_.extract(queue_.begin());
    // Neither pending nor in flight any more: the daemon owns it until it
    // calls MarkInFlight(), which makes a fresh entry.
    entries_.erase(node.value().second);
    ready.push_back(std::move(node.value().second));
  }
  return ready;
}

std::optional<SettleQueue::Clock::time_point> SettleQueue::NextDeadline() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.begin()->first;
}

void SettleQueue::MarkInFlight(const std::string& path) {
  // Not bounded by max_paths: in-flight paths are bounded by the verifier pool.
  Entry& entry = entries_[path];
  if (entry.in_flight) return;
  entry.in_flight = true;
  ++in_flight_;
  if (entry.pending) {
    // Written between Ready() and now: the verdict will already be stale.
    queue_.erase({entry.deadline, path});
    ++superseded_;
  }
}

bool SettleQueue::Finish(const std::string& path) {
  auto it = entries_.find(path);
  if (it == entries_.end() || !it->second.in_flight) return false;
  Entry& entry = it->second;
  entry.in_flight = false;
  --in_flight_;
  if (!entry.pending) {
    entries_.erase(it);
    return false;
  }
  --superseded_;
  queue_.emplace(entry.deadline, path);
  return true;
}

void SettleQueue::DropPendingUnder(const std::string& path) {
  const std::string prefix = path + "/";
  for (auto it = entries_.begin(); it != entries_.end();) {
    const std::string& name = it->first;
    Entry& entry = it->second;
    if ((name != path && name.compare(0, prefix.size(), prefix) != 0) || !entry.pending) {
      ++it;
      continue;
    }
    entry.pending = false;
    if (entry.in_flight) {
      --superseded_;  // its Finish() now reports nothing stale
      ++it;
    } else {
      queue_.erase({entry.deadline, name});
      it = entries_.erase(it);
    }
  }
}

bool SettleQueue::TakeOverflow() { return std::exchange(overflow_, false); }

}  // namespace ckptwatch
