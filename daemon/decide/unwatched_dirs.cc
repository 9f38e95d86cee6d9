// The directories of a watch polled because they have no inotify watch (unwatched_dirs.h).
#include "decide/unwatched_dirs.h"

namespace ckptwatch {

std::size_t UnwatchedDirs::Add(const std::string& relative, Clock::duration settle) {
  // A directory that lost its watch again keeps its poller; its next poll is a baseline anew.
  dirs_.try_emplace(relative, settle).first->second.baselined = false;
  return dirs_.size();
}

void UnwatchedDirs::ForgetUnder(const std::string& relative) {
  dirs_.erase(relative);
  const std::string prefix = relative + "/";
  auto it = dirs_.lower_bound(prefix);
  while (it != dirs_.end() && it->first.compare(0, prefix.size(), prefix) == 0)
    it = dirs_.erase(it);
}

std::vector<std::string> UnwatchedDirs::Due(Clock::time_point now, Clock::duration interval) {
  std::vector<std::string> due;
  if (dirs_.empty() || now < next_poll_) return due;
  next_poll_ = now + interval;
  // A poll still under way is not doubled: the next one waits for another interval.
  for (const auto& [relative, dir] : dirs_)
    if (!running_.count(relative)) due.push_back(relative);
  return due;
}

bool UnwatchedDirs::Finished(const std::string& relative) {
  running_.erase(relative);
  return dirs_.count(relative) > 0;
}

std::vector<std::string> UnwatchedDirs::Polled(const std::string& relative,
                                               const Snapshot& snapshot, Clock::time_point now,
                                               const Seen& seen) {
  auto it = dirs_.find(relative);
  if (it == dirs_.end()) return {};
  Dir& dir = it->second;
  if (dir.baselined) return dir.poller.Update(snapshot, now);
  dir.baselined = true;
  dir.poller.Baseline(snapshot);
  std::vector<std::string> changed;
  for (const auto& [path, stat] : snapshot.files)
    if (!seen(path, stat)) changed.push_back(path);
  return changed;
}

}  // namespace ckptwatch
