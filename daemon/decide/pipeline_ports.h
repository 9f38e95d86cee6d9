// What the pipeline asks the world to do besides watching (watcher.h): scan
// a directory, verify a file, report. The decision core (pipeline.h) only calls these;
// the libuv loop (daemon.cc) implements them with inotify, the thread pool,
// verifier children, the log and Prometheus, and the pipeline tests record
// them (watchman's FakeWatcher, ninja's VirtualFileSystem).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "decide/checkpoint_event.h"
#include "decide/pipeline_events.h"
#include "decide/watch_problem.h"
#include "verify/engine/verify_job.h"
#include "watch/snapshot.h"
#include "watch/watch_event.h"
#include "watch/watcher.h"

namespace ckptwatch {

/// A scan of `relative` ("" for the whole root) beneath a watch's root. The
/// result comes back through Pipeline::OnScanDone().
struct ScanRequest {
  std::string watch;
  std::string root_path;  ///< The watch's path: files come back as paths under it.
  std::string relative;
  bool recursive = true;
  std::vector<std::string> patterns;
  std::vector<std::string> exclude;
  ScanReason reason = ScanReason::kStart;
};

struct ScanResult {
  ScanRequest request;
  bool ok = false;
  Snapshot snapshot;
  std::string error;
  int error_code = 0;  ///< errno when !ok
};

class Scanner {
 public:
  virtual ~Scanner() = default;
  /// Starts `request` off the loop; its ScanResult is delivered later.
  virtual void Scan(ScanRequest request) = 0;
};

/// Verification of files, each in a confined child. Results come back
/// through Pipeline::OnVerified().
class Verifier {
 public:
  virtual ~Verifier() = default;
  /// Queues `job` (the file is opened beneath the watch's root when its turn
  /// comes). False when the queue is full.
  virtual bool Enqueue(VerifyJob job) = 0;
  /// True when Enqueue() would refuse a new path (verify.queue_limit waiting).
  virtual bool Full() const = 0;
  /// Drops waiting jobs of `watch`.
  virtual void DropWatch(const std::string& watch) = 0;
  virtual std::size_t waiting() const = 0;
  virtual std::size_t running() const = 0;
};

/// One directory whose checkpoint sets are due to be judged (docs/checkpoint-sets.md). Judging
/// reads indexes whoever can write the watch controls (a DCP `.metadata` of hundreds of MiB, a
/// FIFO named like one), so it runs off the loop; the result comes back through
/// Pipeline::OnSetsJudged().
struct SetJudgeRequest {
  std::uint64_t id = 0;  ///< Unique in a pipeline: a result no longer waited for is dropped.
  std::string watch;
  std::string root_path;  ///< The watch's path (the root is reached by its descriptor).
  std::string relative;   ///< The directory below the root; "" for the root itself.
  Level level = Level::kStructure;
  /// Files under it whose own verification (in a confined verifier) failed, by path: a set
  /// holding one is not complete. Judging verifies no member itself.
  std::map<std::string, MemberCheck> failed_members;
};

struct SetJudgeResult {
  SetJudgeRequest request;
  std::vector<CheckpointEvent> events;  ///< Each set, and each pointer (ok ones too).
};

class SetJudge {
 public:
  virtual ~SetJudge() = default;
  /// Starts judging `request` off the loop; its SetJudgeResult is delivered later.
  virtual void Judge(SetJudgeRequest request) = 0;
};

/// Every log line and metric the pipeline produces goes through here, as a domain event
/// (pipeline_events.h): report/event_reporter.h derives the line and the metrics.
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void Report(PipelineEvent event) = 0;
};

}  // namespace ckptwatch
