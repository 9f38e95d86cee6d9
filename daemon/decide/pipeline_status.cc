// Pipeline::CurrentStatus(): what `ckptwatch status` shows, from the pipeline's own state.
#include <algorithm>

#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"

namespace ckptwatch {

StatusSnapshot Pipeline::CurrentStatus() const {
  StatusSnapshot out;
  out.unix_now = env_.UnixNow();
  out.verifying = verifier_.running();
  out.queued = QueueLength();
  for (const auto& [name, w] : watches_) {
    WatchStatus s;
    s.name = name;
    s.path = w->config.path;
    if (w->state == Watch::State::kMissing) {
      s.state = "missing";
      s.backend = "none";
    } else {
      s.state = w->unwatched.empty() && !(w->polling && w->problems.Active("degraded_watching"))
                    ? "watching"
                    : "degraded";
      s.backend = w->polling ? "poll" : "inotify";
    }
    if (w->last_good_time) s.last_good = WatchStatus::LastGood{w->last_good_path, *w->last_good_time, w->last_good_bytes};
    for (const auto& [path, record] : w->paths) {
      if (!record.remembered) continue;
      const PathRecord::Remembered& r = *record.remembered;
      if (r.load_problem && r.cause.empty()) {
        LoadProblemFile p = *r.load_problem;
        p.path = path;
        p.run = w->runs.Of(path);
        s.load_problems.push_back(std::move(p));
      }
      if (r.cause.empty()) continue;
      FailingFile f{path, w->runs.Of(path), r.verdict, r.cause, r.reason, 0, 1};
      if (record.repeat) {
        f.since_unix = record.repeat->first_unix;
        f.count = record.repeat->count;
      }
      s.failing.push_back(std::move(f));
    }
    s.failing_total = s.failing.size();
    std::sort(s.failing.begin(), s.failing.end(),
              [](const FailingFile& a, const FailingFile& b) { return a.since_unix > b.since_unix; });
    if (s.failing.size() > StatusSnapshot::kMaxFailingShown) s.failing.resize(StatusSnapshot::kMaxFailingShown);
    s.load_problems_total = s.load_problems.size();
    std::sort(s.load_problems.begin(), s.load_problems.end(),
              [](const LoadProblemFile& a, const LoadProblemFile& b) {
                return a.since_unix > b.since_unix;
              });
    if (s.load_problems.size() > StatusSnapshot::kMaxFailingShown)
      s.load_problems.resize(StatusSnapshot::kMaxFailingShown);
    s.resolved.assign(w->failures.resolved().begin(), w->failures.resolved().end());
    // A reason that counts time says how long it is now, not how long it was when it started.
    const std::string stale(WatchProblemName(WatchProblem::kStale));
    for (const auto& [problem, reason] : w->problems.active())
      s.problems.push_back(
          {problem, problem == stale && w->stale ? StaleReason(*w, env_.Now()) : reason});
    s.pending = w->settle->pending_count() + w->blocked.size();
    for (const auto& [run, good] : w->runs.last_good()) s.runs.push_back({run, good});
    std::sort(s.runs.begin(), s.runs.end(),
              [](const WatchStatus::Run& a, const WatchStatus::Run& b) { return a.last_good.unix > b.last_good.unix; });
    for (const auto& [run, set] : w->runs.complete()) s.complete_sets.push_back(set);
    std::sort(s.complete_sets.begin(), s.complete_sets.end(),
              [](const WatchStatus::CompleteSet& a, const WatchStatus::CompleteSet& b) {
                return a.unix > b.unix;
              });
    out.watches.push_back(std::move(s));
  }
  return out;
}

}  // namespace ckptwatch
