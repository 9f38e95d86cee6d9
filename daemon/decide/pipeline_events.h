// What the decision core tells the world, as domain events: value types only (no log or
// metrics library here). The Reporter port (pipeline_ports.h) takes one PipelineEvent at a
// time; report/event_reporter.cc derives the log line and the metrics of each event type in
// one place, and the pipeline tests record the events and assert on them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "config/config.h"
#include "decide/log_event.h"
#include "decide/watch_problem.h"
#include "verify/verdict.h"
#include "verify/verify_result.h"

namespace ckptwatch {

/// Keys and their already-formatted values, in order (report/logfmt.h's LogField).
using EventFields = std::vector<std::pair<std::string, std::string>>;

/// A line that is only a line: something happened that changes no metric.
struct Logged {
  LogLevel level = LogLevel::kInfo;
  LogEvent event = LogEvent::kStart;
  EventFields fields;
  std::string message;
};

/// A file's verdict, as decided (outcome.h): its log line (unless it repeats a failure logged
/// within log.repeat_every) and its metrics.
struct VerdictReached {
  std::string watch, run, path;
  Verdict verdict = Verdict::kOk;
  Level level = Level::kHeader;
  double seconds = 0;
  std::uint64_t bytes = 0;
  /// The failed save's cause; "" when it is no failed save.
  std::string cause;
  std::optional<LoadOutcome> load;
  /// Set for an ok verdict: it is the newest good checkpoint (unix seconds).
  std::optional<double> good_unix;
  /// The `verify` line; nullopt when it is a repeat not logged this time.
  std::optional<Logged> line;
  /// When it was reached (unix seconds): a save attempt ended, good or not.
  double unix = 0;
};

/// The newest good checkpoint, from the state file at start (no verdict reached now).
struct LastGoodRestored {
  std::string watch, run;
  double unix_seconds = 0;
  std::uint64_t bytes = 0;
};

/// A watch problem's state, set on every check; `change` says whether it started or ended now.
struct ProblemChanged {
  enum class Change { kNone, kStarted, kCleared };
  std::string watch, path;
  WatchProblem problem = WatchProblem::kStale;
  bool active = false;
  Change change = Change::kNone;
  std::string reason;  ///< Why it started.
};

/// A watch (re)started with `backend` ("inotify", "poll", or "none" while its root is missing).
struct WatchBackendChanged {
  std::string watch, path, backend;
};

/// A watch was removed by a reload.
struct WatchRemoved {
  std::string watch, path;
};

/// The count of files of a watch/run whose latest verdict is a failed save of `cause`, not
/// resolved since (docs/reliability.md, "When a failure is over"); 0 says none.
struct FailingFilesChanged {
  std::string watch, run, cause;
  std::size_t count = 0;
};

/// A run of a watch was first seen: its failure series exist from now on, at 0.
struct RunAdded {
  std::string watch, run;
};

/// A run's series go away: its directory went, run_depth changed, or — `expired_for` set — it
/// was the least recently active run when `expired_for` made more than `max_runs`.
struct RunRemoved {
  std::string watch, run;
  std::optional<std::string> expired_for;
  int max_runs = 0;
};

/// A watch was scanned again for `reason`; `files` and `changed` when a rescan's line is due.
struct Rescanned {
  std::string watch;
  ScanReason reason = ScanReason::kStart;
  std::optional<std::size_t> files, changed;
};

/// Free and total space of a watch's filesystem.
struct FilesystemSpace {
  std::string watch;
  std::uint64_t avail = 0, size = 0;
};

/// Files waiting for a verifier, across watches.
struct QueueLengthChanged {
  std::size_t length = 0;
};

/// A checkpoint set was judged (decide/checkpoint_sets.h), or a resume pointer names a broken
/// one: its `event=checkpoint` line, and for a set that is not ok the failed save's cause.
struct CheckpointJudged {
  std::string watch;
  std::string run;  ///< The run of the set's directory; "" outside runs.
  Logged line;
  std::string cause;  ///< "" when it is no failed save.
  bool pointer = false;        ///< A resume pointer's line, not a set's judgement.
  std::string layout, verdict;  ///< A set's (ckptwatch_checkpoint_sets_total).
  std::optional<double> complete_unix;  ///< A complete set: when it was judged so.
};

/// How many resume pointers of a watch name a missing or broken set now.
struct ResumePointersBroken {
  std::string watch;
  std::size_t count = 0;
};

using PipelineEvent = std::variant<Logged, VerdictReached, LastGoodRestored, ProblemChanged,
                                   WatchBackendChanged, WatchRemoved, FailingFilesChanged, RunAdded,
                                   RunRemoved, Rescanned, FilesystemSpace, QueueLengthChanged,
                                   CheckpointJudged, ResumePointersBroken>;

}  // namespace ckptwatch
