// When a failed save is over, and how many files are failing now.
//
// A failure stays until something newer says the run is saving again: a good
// checkpoint that lands later in the same watch (and run, with run_depth), or
// the file itself written again good; a deleted file takes its failure with
// it. Until then it is counted in ckptwatch_failing_files, which the state
// file restores at start, so neither a restart nor a scrape gap can resolve a
// page that nothing resolved. Files of one checkpoint directory below the
// run (a sharded or multi-file save) are one save: a good member does not end
// the failure of a broken sibling.
#include "decide/failure_tracker.h"

#include <algorithm>

#include "base/path_name.h"
#include "decide/pipeline_watch.h"  // RelativeTo

namespace ckptwatch {
namespace {

constexpr std::size_t kResolvedKept = StatusSnapshot::kMaxResolvedShown;

}  // namespace

bool FailureTracker::Resolve(PathTable& paths, const WatchConfig& config, const RunOf& run_of,
                             const std::string& path, const FileStat& stat,
                             const std::optional<ResolvedFailure>& own_failure, double now_unix) {
  auto keep = [&](ResolvedFailure r) {
    r.resolved_unix = now_unix;
    resolved_.push_front(std::move(r));
    if (resolved_.size() > kResolvedKept) resolved_.pop_back();
  };
  if (own_failure) keep(*own_failure);  // rewritten good
  const std::string run = run_of(path);
  // The directory of a save made of several files: "" where each file is its own save (the
  // watch root, or a run's own directory).
  auto save_dir = [&](const std::string& file) {
    const std::string dir = ParentPath(file);
    if (dir == config.path) return std::string();
    const std::string relative = RelativeTo(config.path, dir);
    if (config.run_depth > 0 &&
        static_cast<int>(std::count(relative.begin(), relative.end(), '/')) + 1 <= config.run_depth)
      return std::string();
    return dir;
  };
  const std::string good_dir = save_dir(path);
  bool changed = false;
  for (auto& [failed_path, record] : paths) {
    if (!record.remembered) continue;
    PathRecord::Remembered& r = *record.remembered;
    if (r.cause.empty() || failed_path == path || run_of(failed_path) != run) continue;
    if (r.stat.mtime_ns >= stat.mtime_ns) continue;  // not newer than the failure
    const std::string failed_dir = save_dir(failed_path);
    if (!failed_dir.empty() && failed_dir == good_dir) continue;  // the same save
    keep({failed_path, run, r.verdict, r.cause, path, 0});
    r.cause.clear();
    record.repeat.reset();
    changed = true;
  }
  if (changed) dirty_ = true;
  return changed;
}

std::vector<FailingFilesChanged> FailureTracker::Publish(const PathTable& paths,
                                                         const std::string& watch,
                                                         const RunOf& run_of) {
  std::vector<FailingFilesChanged> out;
  if (!dirty_) return out;
  dirty_ = false;
  std::map<std::pair<std::string, std::string>, std::size_t> counts;
  for (const auto& [path, record] : paths)
    if (record.remembered && !record.remembered->cause.empty())
      ++counts[{run_of(path), record.remembered->cause}];
  for (auto& [key, published] : published_) {
    auto now = counts.find(key);
    const std::size_t count = now == counts.end() ? 0 : now->second;
    if (count != published) out.push_back({watch, key.first, key.second, count});
    published = count;
  }
  for (const auto& [key, count] : counts) {
    if (published_.count(key)) continue;
    out.push_back({watch, key.first, key.second, count});
    published_[key] = count;
  }
  return out;
}

}  // namespace ckptwatch
