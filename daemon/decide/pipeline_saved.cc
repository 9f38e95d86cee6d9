// State across restarts: what Pipeline::Saved() gives the state file, and how a watch's start
// scan uses what a previous run saved (Pipeline::RestoreWatch()).
#include <algorithm>

#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"

namespace ckptwatch {

SavedState Pipeline::Saved() const {
  SavedState state;
  for (const auto& [name, w] : watches_) {
    SavedWatch& saved = state.watches[name];
    saved.path = w->config.path;
    // Newest first, so a bounded state file keeps the files that matter.
    std::vector<std::pair<std::uint64_t, const std::string*>> order;
    for (const auto& [path, record] : w->paths)
      if (record.remembered) order.emplace_back(record.remembered->seq, &path);
    std::sort(order.rbegin(), order.rend());
    for (const auto& [seq, path] : order) {
      const PathRecord& record = *w->paths.Find(*path);
      const PathRecord::Remembered& r = *record.remembered;
      saved.files.push_back(
          {*path, r.stat, r.verdict, r.cause, record.repeat ? record.repeat->first_unix : 0});
    }
    if (w->last_good_time) {
      SavedFile good;
      good.path = w->last_good_path;
      good.stat.size = w->last_good_bytes;
      good.verdict = "ok";
      good.since_unix = *w->last_good_time;
      saved.last_good = good;
    }
  }
  return state;
}

// The start scan of a watch with saved state: a file whose size, mtime and
// inode are as saved keeps its verdict (a failure stays known, not new);
// everything else is verified. True when there was state to use.
bool Pipeline::RestoreWatch(Watch& w, const Snapshot& snapshot) {
  if (!w.restored) return false;
  SavedWatch saved = std::move(*w.restored);
  w.restored.reset();
  if (saved.path != w.config.path) return false;
  std::map<std::string, const SavedFile*> by_path;
  for (const SavedFile& f : saved.files) by_path[f.path] = &f;
  const Clock::time_point now = env_.Now();
  std::size_t kept = 0, failing = 0, changed = 0;
  for (const auto& [path, stat] : snapshot.files) {
    auto it = by_path.find(path);
    if (it == by_path.end() || !(it->second->stat == stat)) {
      if (!HasWriteEvent(w, path)) Touch(w, path, now - w.config.settle);
      ++changed;
      continue;
    }
    const SavedFile& f = *it->second;
    Remember(w, path, stat, f.verdict, f.cause);
    ++kept;
    if (!f.cause.empty()) {
      // Known already: the next failure of this file is "again", not new.
      w.paths[path].repeat =
          PathRecord::Repeat{f.verdict + "/" + f.cause, f.since_unix, 1, Clock::time_point{}};
      ++failing;
    }
  }
  if (saved.last_good && snapshot.files.count(saved.last_good->path)) {
    w.last_good_time = saved.last_good->since_unix;
    w.last_good_bytes = saved.last_good->stat.size;
    w.last_good_path = saved.last_good->path;
    reporter_.Report(LastGoodRestored{w.config.name, w.runs.Of(w.last_good_path),
                                      *w.last_good_time, w.last_good_bytes});
  }
  Log(LogLevel::kInfo, LogEvent::kStateRestored,
      {{"watch", w.config.name},
       {"unchanged", std::to_string(kept)},
       {"failing", std::to_string(failing)},
       {"changed", std::to_string(changed)}},
      "verdicts from before the restart kept for unchanged files; changed and new files are "
      "verified");
  return true;
}

}  // namespace ckptwatch
