// The decision about one verdict: is it a failed save, with what cause, and
// what does its log line say. A pure function of the verdict and what was
// known when it arrived; the pipeline reports what it returns.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "base/log_fields.h"
#include "config/config.h"
#include "decide/save_cause.h"
#include "decide/status_snapshot.h"
#include "verify/load_check.h"
#include "verify/verify_result.h"

namespace ckptwatch {

/// What the pipeline knew about the file and its filesystem.
struct OutcomeInput {
  std::string watch;
  /// The last event was its writer's close or rename (inotify).
  bool closed = false;
  /// Its writer closed it incomplete and no process holds it open for
  /// writing: the save ended there (killed, crashed, its write failed).
  bool writer_died = false;
  /// Still incomplete at the second look, stuck_after later.
  bool stuck = false;
  std::chrono::milliseconds stuck_after{0};
  /// A process still holds it open for writing (at the second look).
  bool held_open = false;
  /// Who ("pid 12 (python3)"), when visible.
  std::string holder;
  std::optional<FsSpace> space;  ///< The file's own filesystem, when statvfs worked.
  std::optional<SpaceThreshold> min_free;
  /// Why configured readers cannot read an ok file; "" when they can.
  std::string unreadable;
  LoadTarget load_target;  ///< The watch's; empty: judged without a target.
  bool fail_on_incompatible = false;
};

struct Outcome {
  std::string cause;  ///< Empty: not a failed save. Else a cause label (save_cause.h).
  LogLevel level = LogLevel::kInfo;
  std::string message;
  std::vector<LogField> fields;  ///< The `verify` line's fields.
  std::optional<LoadOutcome> load;  ///< For an ok file: its load outcome (load_check.h).
  /// An ok file that is not a failed save but may not load (logged at warn); path and run unset.
  std::optional<LoadProblemFile> load_problem;
};

/// The load target a watch's config names (both parts validated when the config loaded).
LoadTarget WatchLoadTarget(const WatchConfig& watch);

/// The verdict reported for `result`: an in_progress file whose writer is gone
/// (input.writer_died) is no save in progress but one that ended incomplete, so
/// `truncated`; anything else unchanged.
VerifyResult AsReported(const VerifyResult& result, const OutcomeInput& input);

/// Decides how `result` is reported.
Outcome DecideOutcome(const VerifyResult& result, const OutcomeInput& input);

}  // namespace ckptwatch
