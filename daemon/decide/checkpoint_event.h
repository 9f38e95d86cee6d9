// What the daemon says about a checkpoint set it judged: the `event=checkpoint` log line, and
// the cause of a set that is not ok, which makes it a failed save (docs/checkpoint-sets.md,
// docs/logging.md).
#pragma once

#include <string>
#include <vector>

#include "base/log_fields.h"
#include "config/config.h"
#include "verify/sets/checkpoint_set.h"
#include "verify/sets/resume_pointer.h"

namespace ckptwatch {

struct CheckpointEvent {
  bool pointer = false;  ///< A resume pointer's judgement, not a set's.
  std::string path;      ///< The set's path (or the pointer's).
  std::string layout;    ///< The set's layout; the pointer's kind.
  std::string verdict;   ///< ok, incomplete, inconsistent; for pointers also missing, unrecognized.
  std::string dir;                    ///< The directory `at_fault` is relative to.
  std::vector<std::string> at_fault;  ///< Members at fault.
  std::int64_t step = -1;
  LogLevel level = LogLevel::kInfo;
  std::vector<LogField> fields;  ///< After `watch` (and `run`), which the caller adds.
  std::string msg;
  /// Empty when the set is ok; else the failed save's cause: `truncated` (a member is cut
  /// short, or its own verdict says so), `missing_member`, `no_commit_point`, `inconsistent_set`,
  /// or a member's own verdict (`corrupt`, ...).
  std::string cause;
};

/// The `event=checkpoint` line of a judged set: info when ok, error otherwise (`path`,
/// `layout`, `verdict`, `members` count, `missing` and `at_fault` names — at most 20 —, `step`,
/// `cause`); `msg` is the reason.
CheckpointEvent DescribeSet(const SetReport& report);

/// The line for a resume pointer that names a missing or broken set (warn; `path`, `pointer`,
/// `names`, `verdict`, `last_complete`); `msg` says what a resume would do.
CheckpointEvent DescribePointer(const PointerReport& report);

}  // namespace ckptwatch
