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
#include <algorithm>

#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"

namespace ckptwatch {
namespace {

constexpr std::size_t kResolvedKept = StatusSnapshot::kMaxResolvedShown;

std::string Parent(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

}  // namespace

void Pipeline::ResolveFailures(Watch& w, const std::string& path, const FileStat& stat,
                               const std::optional<ResolvedFailure>& own_failure) {
  const double now = env_.UnixNow();
  auto keep = [&](ResolvedFailure r) {
    r.resolved_unix = now;
    w.resolved.push_front(std::move(r));
    if (w.resolved.size() > kResolvedKept) w.resolved.pop_back();
  };
  if (own_failure) keep(*own_failure);  // rewritten good
  const std::string run = RunOf(w, path);
  // The directory of a save made of several files: "" where each file is its own save (the
  // watch root, or a run's own directory).
  auto save_dir = [&](const std::string& file) {
    const std::string dir = Parent(file);
    if (dir == w.config.path) return std::string();
    const std::string relative = RelativeTo(w.config.path, dir);
    if (w.config.run_depth > 0 &&
        static_cast<int>(std::count(relative.begin(), relative.end(), '/')) + 1 <=
            w.config.run_depth)
      return std::string();
    return dir;
  };
  const std::string good_dir = save_dir(path);
  for (auto& [failed_path, r] : w.reported) {
    if (r.cause.empty() || failed_path == path || RunOf(w, failed_path) != run) continue;
    if (r.stat.mtime_ns >= stat.mtime_ns) continue;  // not newer than the failure
    const std::string failed_dir = save_dir(failed_path);
    if (!failed_dir.empty() && failed_dir == good_dir) continue;  // the same save
    keep({failed_path, run, r.verdict, r.cause, path, 0});
    r.cause.clear();
    w.repeats.erase(failed_path);
    state_dirty_ = true;
    w.failing_dirty = true;
  }
  if (own_failure || w.failing_dirty) PublishFailing(w);
}

void Pipeline::PublishFailing(Watch& w) {
  if (!w.failing_dirty) return;
  w.failing_dirty = false;
  std::map<std::pair<std::string, std::string>, std::size_t> counts;
  for (const auto& [path, r] : w.reported)
    if (!r.cause.empty()) ++counts[{RunOf(w, path), r.cause}];
  for (auto& [key, published] : w.failing_published) {
    auto now = counts.find(key);
    const std::size_t count = now == counts.end() ? 0 : now->second;
    if (count != published) reporter_.SetFailingFiles(w.config.name, key.first, key.second, count);
    published = count;
  }
  for (const auto& [key, count] : counts) {
    if (w.failing_published.count(key)) continue;
    reporter_.SetFailingFiles(w.config.name, key.first, key.second, count);
    w.failing_published[key] = count;
  }
}

}  // namespace ckptwatch
