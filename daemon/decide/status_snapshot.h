// What `ckptwatch status` shows: the running daemon's view of every watch at
// one moment — its state, last good checkpoint, failing files and problems.
// The pipeline fills it (Pipeline::CurrentStatus()); report/status_json.h writes
// it for the status socket; cli/status_command.cc reads it back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ckptwatch {

struct FailingFile {
  std::string path;
  std::string run;  ///< With run_depth: the run it belongs to.
  std::string verdict;
  std::string cause;
  std::string reason;       ///< The verify line's message; "" for a failure from before a restart.
  double since_unix = 0;    ///< When this file first failed this way.
  std::uint64_t count = 0;  ///< Failed saves of this file since then.
};

/// An ok file the loading environment may not load (docs/verify.md, "Load prediction"): not a
/// failed save, but what someone must act on before the next `load_model`.
struct LoadProblemFile {
  std::string path;
  std::string run;
  std::string load;       ///< "needs_custom_objects" or "incompatible".
  std::string classes;    ///< Its custom classes, comma-separated; "" when it has none.
  std::string target;     ///< "keras=2.15,python=3.11"; "" when judged without a load target.
  std::string reason;     ///< The rules that fired.
  std::string advice;     ///< What to do about it.
  double since_unix = 0;  ///< When it was verified.
};

/// A failed save that is over: a newer good save landed in the same watch or
/// run, or the file itself was written again good.
struct ResolvedFailure {
  std::string path;
  std::string run;
  std::string verdict;
  std::string cause;
  std::string resolved_by;  ///< The good checkpoint that resolved it (its own path: rewritten good).
  double resolved_unix = 0;
};

struct WatchStatus {
  std::string name;
  std::string path;
  std::string state;    ///< "watching", "missing" or "degraded" (some directories polled).
  std::string backend;  ///< "inotify", "poll" or "none" (missing).
  struct LastGood {
    std::string path;
    double unix = 0;
    std::uint64_t bytes = 0;
  };
  std::optional<LastGood> last_good;
  std::vector<FailingFile> failing;  ///< Newest first; at most kMaxFailingShown.
  std::size_t failing_total = 0;     ///< All failing files, shown or not.
  std::vector<ResolvedFailure> resolved;  ///< Newest first; at most kMaxResolvedShown.
  std::vector<LoadProblemFile> load_problems;  ///< Newest first; at most kMaxFailingShown.
  std::size_t load_problems_total = 0;         ///< All of them, shown or not.
  struct Problem {
    std::string name;
    std::string reason;
  };
  std::vector<Problem> problems;
  std::size_t pending = 0;  ///< Files settling or waiting for a verifier.
  /// With run_depth: each run's last good checkpoint, most recent first.
  struct Run {
    std::string name;
    LastGood last_good;
  };
  std::vector<Run> runs;
  /// The newest checkpoint set judged complete, per run ("" outside runs), most recent first:
  /// what to resume from (docs/checkpoint-sets.md).
  struct CompleteSet {
    std::string run;
    std::string path;
    std::string layout;
    std::int64_t step = -1;
    double unix = 0;  ///< When it was judged complete.
  };
  std::vector<CompleteSet> complete_sets;
};

struct StatusSnapshot {
  double unix_now = 0;
  std::vector<WatchStatus> watches;
  std::size_t verifying = 0;
  std::size_t queued = 0;

  static constexpr std::size_t kMaxFailingShown = 50;
  static constexpr std::size_t kMaxResolvedShown = 10;

  /// True when nothing is failing and no watch has a problem. A load problem is not a failed
  /// save (unless fail_on_incompatible makes it one): it is listed, the exit status stays 0.
  bool AllWell() const {
    for (const WatchStatus& w : watches)
      if (w.failing_total > 0 || !w.problems.empty() || w.state != "watching") return false;
    return true;
  }
};

}  // namespace ckptwatch
