// Runs: a run is the directory at run_depth below the root (one training run's saves). Each
// run's failure series live only while the run is active: max_runs bounds them, so a watch of
// many short runs does not grow its metrics without end.
#include "decide/run_tracker.h"

#include <algorithm>
#include <utility>

#include "decide/pipeline_watch.h"  // RelativeTo

namespace ckptwatch {

void RunTracker::Apply(const WatchConfig& config) {
  watch_ = config.name;
  root_ = config.path;
  depth_ = config.run_depth;
  max_runs_ = config.max_runs;
}

std::string RunTracker::Of(const std::string& path, bool directory) const {
  if (depth_ <= 0) return "";
  const std::string relative = RelativeTo(root_, path);
  std::size_t start = 0;
  for (int i = 1; i < depth_; ++i) {
    start = relative.find('/', start);
    if (start == std::string::npos) return "";
    ++start;
  }
  const std::size_t end = relative.find('/', start);
  if (end == std::string::npos && !directory) return "";
  return relative.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

RunTracker::Events RunTracker::See(const std::string& run) {
  Events events;
  if (run.empty()) return events;
  const std::uint64_t seq = ++seq_;
  if (auto it = active_.find(run); it != active_.end()) {
    it->second = seq;
    return events;
  }
  while (!active_.empty() && active_.size() >= static_cast<std::size_t>(max_runs_)) {
    auto idle = std::min_element(active_.begin(), active_.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    const std::string expired = idle->first;
    active_.erase(idle);
    last_good_.erase(expired);
    complete_.erase(expired);
    events.push_back(RunRemoved{watch_, expired, run, max_runs_});
  }
  active_[run] = seq;
  events.push_back(RunAdded{watch_, run});
  return events;
}

RunTracker::Events RunTracker::Gone(const std::string& path) {
  Events events;
  const std::string relative = RelativeTo(root_, path);
  if (relative.empty() || std::count(relative.begin(), relative.end(), '/') + 1 != depth_)
    return events;
  const std::string run = Of(path, /*directory=*/true);
  last_good_.erase(run);
  complete_.erase(run);
  if (active_.erase(run)) events.push_back(RunRemoved{watch_, run, std::nullopt, 0});
  return events;
}

RunTracker::Events RunTracker::Clear() {
  Events events;
  for (const auto& [run, seq] : active_) events.push_back(RunRemoved{watch_, run, std::nullopt, 0});
  active_.clear();
  last_good_.clear();
  complete_.clear();
  return events;
}

RunTracker::Events RunTracker::Seed(const Snapshot& snapshot) {
  Events events;
  if (depth_ <= 0) return events;
  std::map<std::string, std::int64_t> newest;
  for (const auto& [path, stat] : snapshot.files) {
    const std::string run = Of(path);
    if (run.empty()) continue;
    std::int64_t& t = newest[run];
    t = std::max(t, stat.mtime_ns);
  }
  std::vector<std::pair<std::int64_t, std::string>> order;
  for (auto& [run, t] : newest) order.emplace_back(t, run);
  std::sort(order.rbegin(), order.rend());
  if (order.size() > static_cast<std::size_t>(max_runs_)) order.resize(max_runs_);
  // Oldest first, so that the newest is the most recently active.
  for (auto it = order.rbegin(); it != order.rend(); ++it)
    for (PipelineEvent& event : See(it->second)) events.push_back(std::move(event));
  return events;
}

void RunTracker::SetLastGood(const std::string& run, const WatchStatus::LastGood& good) {
  if (!run.empty()) last_good_[run] = good;
}

void RunTracker::SetComplete(const std::string& run, const WatchStatus::CompleteSet& set) {
  complete_[run] = set;
}

}  // namespace ckptwatch
