#include "decide/path_record.h"

#include <vector>

namespace ckptwatch {

void PathRecord::ForgetKnown() {
  seen.reset();
  incomplete_verdicts = 0;
  writer_at_last_look = false;
  remembered.reset();
  repeat.reset();
  link_target.reset();
}

bool PathRecord::Empty() const {
  return !seen && incomplete_verdicts == 0 && !remembered && !repeat && !link_target &&
         !last_event_ns && !close && !blocked && !dispatched && !moved_away;
}

PathRecord* PathTable::Find(const std::string& path) {
  auto it = records_.find(path);
  return it == records_.end() ? nullptr : &it->second;
}

const PathRecord* PathTable::Find(const std::string& path) const {
  auto it = records_.find(path);
  return it == records_.end() ? nullptr : &it->second;
}

void PathTable::Tidy(const std::string& path) {
  auto it = records_.find(path);
  if (it != records_.end() && it->second.Empty()) records_.erase(it);
}

// Bounded: the oldest remembered verdicts go first. A forgotten file only costs a verification
// of a close without a write.
void PathTable::Remember(const std::string& path, PathRecord::Remembered remembered) {
  remembered.seq = ++seq_;
  PathRecord& record = records_[path];
  if (!record.remembered) ++remembered_;
  order_.emplace_back(remembered.seq, path);
  record.remembered = std::move(remembered);
  while (remembered_ > max_remembered_ && !order_.empty()) {
    auto [old_seq, old_path] = std::move(order_.front());
    order_.pop_front();
    auto it = records_.find(old_path);
    if (it == records_.end() || !it->second.remembered || it->second.remembered->seq != old_seq)
      continue;
    it->second.remembered.reset();
    --remembered_;
    if (it->second.Empty()) records_.erase(it);
  }
  Compact();
}

void PathTable::Forget(const std::string& path, bool keep_write_event) {
  auto forget = [&](Map::iterator it) {
    PathRecord& record = it->second;
    if (record.remembered) --remembered_;
    record.ForgetKnown();
    if (!keep_write_event) record.ForgetWriteEvent();
    return record.Empty() ? records_.erase(it) : std::next(it);
  };
  if (auto it = records_.find(path); it != records_.end()) forget(it);
  const std::string prefix = path + "/";
  for (auto it = records_.lower_bound(prefix);
       it != records_.end() && it->first.compare(0, prefix.size(), prefix) == 0;)
    it = forget(it);
  Compact();
}

void PathTable::SetSeen(const Snapshot& snapshot) {
  for (auto it = records_.begin(); it != records_.end();) {
    it->second.seen.reset();
    it = it->second.Empty() ? records_.erase(it) : std::next(it);
  }
  for (const auto& [path, stat] : snapshot.files) records_[path].seen = stat;
}

// Rewrites and deletions leave stale entries in the order; compact before they outgrow the
// records (a deleted flood must give its memory back).
void PathTable::Compact() {
  if (order_.size() <= 2 * remembered_ + 1024) return;
  std::deque<std::pair<std::uint64_t, std::string>> live;
  for (auto& entry : order_) {
    const PathRecord* record = Find(entry.second);
    if (record && record->remembered && record->remembered->seq == entry.first)
      live.push_back(std::move(entry));
  }
  order_.swap(live);
}

}  // namespace ckptwatch
