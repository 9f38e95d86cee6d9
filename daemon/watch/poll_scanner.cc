#include "watch/poll_scanner.h"

#include <algorithm>

namespace ckptwatch {

void PollScanner::Baseline(const Snapshot& snapshot) {
  tracked_.clear();
  for (const auto& [path, stat] : snapshot.files) {
    tracked_[path] = Tracked{stat, Clock::time_point{}, settle_, /*reported=*/true};
  }
}

std::vector<std::string> PollScanner::Update(const Snapshot& snapshot, Clock::time_point now) {
  std::erase_if(tracked_, [&](const auto& item) { return !snapshot.files.count(item.first); });
  std::vector<std::string> settled;
  for (const auto& [path, stat] : snapshot.files) {
    auto [it, inserted] = tracked_.try_emplace(path);
    Tracked& tracked = it->second;
    if (inserted || tracked.stat != stat) tracked = Tracked{stat, now, settle_, false};
    // Measured between observations, not from a guess of when the write
    // happened: a file still growing between two scans is never reported.
    if (!tracked.reported && now - tracked.since >= tracked.settle) {
      tracked.reported = true;
      settled.push_back(path);
    }
  }
  return settled;
}

std::size_t PollScanner::unsettled_count() const {
  return std::count_if(tracked_.begin(), tracked_.end(),
                       [](const auto& item) { return !item.second.reported; });
}

}  // namespace ckptwatch
