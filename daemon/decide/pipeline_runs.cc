// Runs under one watch (run_depth): which run a path belongs to, and the
// bound on how many runs keep their own series (max_runs).
#include <algorithm>
#include <vector>

#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"

namespace ckptwatch {

std::string Pipeline::RunOf(const Watch& w, const std::string& path, bool directory) const {
  const int depth = w.config.run_depth;
  if (depth <= 0) return "";
  const std::string relative = RelativeTo(w.config.path, path);
  std::size_t start = 0;
  for (int i = 1; i < depth; ++i) {
    start = relative.find('/', start);
    if (start == std::string::npos) return "";
    ++start;
  }
  const std::size_t end = relative.find('/', start);
  // A file needs a directory at the run's depth; a directory may be the run itself.
  if (end == std::string::npos && !directory) return "";
  return relative.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

void Pipeline::SeeRun(Watch& w, const std::string& run) {
  if (run.empty()) return;
  const std::uint64_t seq = ++w.run_seq;
  if (auto it = w.runs.find(run); it != w.runs.end()) {
    it->second = seq;
    return;
  }
  while (!w.runs.empty() && w.runs.size() >= static_cast<std::size_t>(w.config.max_runs)) {
    auto idle = std::min_element(w.runs.begin(), w.runs.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    const std::string expired = idle->first;
    w.runs.erase(idle);
    w.run_last_good.erase(expired);
    w.run_complete.erase(expired);
    reporter_.Report(RunRemoved{w.config.name, expired, run, w.config.max_runs});
  }
  w.runs[run] = seq;
  reporter_.Report(RunAdded{w.config.name, run});
}

void Pipeline::RunGone(Watch& w, const std::string& path) {
  const std::string relative = RelativeTo(w.config.path, path);
  if (relative.empty() ||
      std::count(relative.begin(), relative.end(), '/') + 1 != w.config.run_depth)
    return;
  const std::string run = RunOf(w, path, /*directory=*/true);
  w.run_last_good.erase(run);
  w.run_complete.erase(run);
  if (w.runs.erase(run)) reporter_.Report(RunRemoved{w.config.name, run, std::nullopt, 0});
}

void Pipeline::DropRuns(Watch& w) {
  for (const auto& [run, seq] : w.runs)
    reporter_.Report(RunRemoved{w.config.name, run, std::nullopt, 0});
  w.runs.clear();
  w.run_last_good.clear();
  w.run_complete.clear();
}

// The runs found by the start scan, the max_runs most recently written,
// so that each run's first failure is an increase from 0.
void Pipeline::SeedRuns(Watch& w, const Snapshot& snapshot) {
  if (w.config.run_depth <= 0) return;
  std::map<std::string, std::int64_t> newest;
  for (const auto& [path, stat] : snapshot.files) {
    const std::string run = RunOf(w, path);
    if (run.empty()) continue;
    std::int64_t& t = newest[run];
    t = std::max(t, stat.mtime_ns);
  }
  std::vector<std::pair<std::int64_t, std::string>> order;
  for (auto& [run, t] : newest) order.emplace_back(t, run);
  std::sort(order.rbegin(), order.rend());
  if (order.size() > static_cast<std::size_t>(w.config.max_runs)) order.resize(w.config.max_runs);
  for (auto it = order.rbegin(); it != order.rend(); ++it) SeeRun(w, it->second);
}

// Per-file lines (a `path` below a run) name the run after the watch.
void Pipeline::AddRunField(EventFields* fields) const {
  auto watch = std::find_if(fields->begin(), fields->end(),
                            [](const auto& f) { return f.first == "watch"; });
  auto path = std::find_if(fields->begin(), fields->end(),
                           [](const auto& f) { return f.first == "path"; });
  if (watch == fields->end() || path == fields->end()) return;
  auto w = watches_.find(watch->second);
  if (w == watches_.end()) return;
  std::string run = RunOf(*w->second, path->second);
  if (!run.empty()) fields->insert(watch + 1, {"run", std::move(run)});
}

}  // namespace ckptwatch
