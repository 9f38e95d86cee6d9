// What the pipeline asks the world to do besides watching (watcher.h): scan
// a directory, verify a file, report. The decision core (pipeline.h) only calls these;
// the libuv loop (daemon.cc) implements them with inotify, the thread pool,
// verifier children, the log and Prometheus, and the pipeline tests record
// them (watchman's FakeWatcher, ninja's VirtualFileSystem).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/log_fields.h"
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

/// Every log line and metric the pipeline produces goes through here.
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void Log(LogLevel level, std::string_view event, std::vector<LogField> fields,
                   std::string msg) = 0;
  virtual void AddWatch(const std::string& watch, const std::string& path, std::string_view backend) = 0;
  virtual void RemoveWatch(const std::string& watch) = 0;
  virtual void Verified(const std::string& watch, Verdict verdict, Level level, double seconds,
                        std::uint64_t bytes) = 0;
  /// `run` is the file's run ("" outside runs, or without run_depth): the `run` label.
  virtual void SaveFailed(const std::string& watch, const std::string& run,
                          std::string_view cause) = 0;
  virtual void SetLastGood(const std::string& watch, const std::string& run, double unix_seconds,
                           std::uint64_t bytes) = 0;
  virtual void SetLastCheckpointOk(const std::string& watch, const std::string& run, bool ok) = 0;
  /// Files of `watch`/`run` whose latest verdict is a failed save of `cause`, not resolved
  /// since (docs/reliability.md, "When a failure is over"): 0 removes nothing, it says none.
  virtual void SetFailingFiles(const std::string& watch, const std::string& run, std::string_view cause,
                               std::size_t count) = 0;
  /// A run of `watch` was first seen: its failure series exist from now on, at 0.
  virtual void AddRun(const std::string& watch, const std::string& run) = 0;
  /// A run expired (max_runs): its series go away.
  virtual void RemoveRun(const std::string& watch, const std::string& run) = 0;
  /// Whether the watch's newest ok checkpoint will not load in its load target's environment.
  virtual void SetLoadIncompatible(const std::string& watch, bool incompatible) = 0;
  virtual void SetProblem(const std::string& watch, WatchProblem problem, bool active) = 0;
  virtual void SetFilesystem(const std::string& watch, std::uint64_t avail, std::uint64_t size) = 0;
  virtual void Rescanned(const std::string& watch, ScanReason reason) = 0;
  virtual void SetQueueLength(std::size_t length) = 0;
};

}  // namespace ckptwatch
