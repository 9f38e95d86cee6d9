#include "decide/set_tracker.h"

#include "verify/sets/set_names.h"

namespace ckptwatch {

SetTracker::Dir* SetTracker::Track(const std::string& dir) {
  auto it = dirs_.find(dir);
  if (it == dirs_.end()) {
    if (dirs_.size() >= kMaxDirs) {
      ++dropped_;
      return nullptr;
    }
    it = dirs_.emplace(dir, Dir{}).first;
  }
  return &it->second;
}

bool SetTracker::OnWrite(const std::string& relative, Clock::time_point now, bool closed) {
  const SetRole role = SetRoleOf(relative);
  if (role == SetRole::kNone) return false;
  Dir* found = Track(SetDirectoryOf(relative));
  if (!found) return false;
  Dir& d = *found;
  d.last_write = now;
  d.arrived = false;
  if (closed)
    d.open.erase(relative);
  else
    d.open.insert(relative);
  if (closed && role == SetRole::kCommitPoint) d.committed = true;
  return true;
}

void SetTracker::OnArrived(const std::string& relative, Clock::time_point now) {
  auto it = dirs_.find(relative);
  if (it != dirs_.end() && !it->second.arrived) return;  // being written: its writes decide
  if (Dir* d = Track(relative)) {
    d->last_write = now;
    d->arrived = true;
  }
}

void SetTracker::OnGone(const std::string& relative) {
  auto it = dirs_.find(SetDirectoryOf(relative));
  if (it != dirs_.end()) it->second.open.erase(relative);
  const std::string below = relative + "/";
  std::erase_if(dirs_, [&](const auto& entry) {
    return entry.first == relative || entry.first.compare(0, below.size(), below) == 0;
  });
}

void SetTracker::MarkDue(const std::string& relative, Clock::time_point now) {
  if (Dir* d = Track(relative)) {
    d->last_write = now;
    d->committed = true;
  }
}

std::chrono::milliseconds SetTracker::Quiet(const Dir& d) const {
  return d.arrived ? arrival_settle_ : settle_;
}

std::vector<std::string> SetTracker::TakeDue(Clock::time_point now) {
  std::vector<std::string> due;
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    const Dir& d = it->second;
    if (d.committed || (d.open.empty() && now - d.last_write >= Quiet(d))) {
      due.push_back(it->first);
      it = dirs_.erase(it);
    } else {
      ++it;
    }
  }
  return due;
}

std::optional<SetTracker::Clock::time_point> SetTracker::NextDeadline() const {
  std::optional<Clock::time_point> next;
  for (const auto& [dir, d] : dirs_) {
    // A directory with a member still open waits for its close (a write event), not the clock.
    if (!d.committed && !d.open.empty()) continue;
    const Clock::time_point at = d.committed ? d.last_write : d.last_write + Quiet(d);
    if (!next || at < *next) next = at;
  }
  return next;
}

}  // namespace ckptwatch
