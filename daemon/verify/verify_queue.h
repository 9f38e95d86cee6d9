// The daemon's verification queue: isolated verifier children spawned with
// uv_spawn, at most `max_parallel` at a time, each killed at its deadline.
// The loop never blocks on disk I/O or HDF5.
#pragma once

#include <uv.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "unique_fd.h"
#include "verifier_child.h"

namespace ckptwatch {

/// One file to verify. The queue opens it only when its child starts, so a
/// long queue holds no descriptors.
struct VerifyJob {
  std::string watch;  ///< Watch name, for the caller.
  std::string path;   ///< For the caller and the child's messages.
  /// The watch root's directory; the file is opened as `relative` beneath it
  /// (OpenBeneath: no symlink followed). Null: `path` is opened as given.
  std::shared_ptr<UniqueFd> root;
  std::string relative;
  VerifyOptions options;
};

class VerifyQueue {
 public:
  using Done = std::function<void(const VerifyJob& job, const VerifyResult& result)>;

  /// `self_exe` is spawned as `self_exe __verify-child …` for each job, with
  /// the opened file as its descriptor kVerifierChildFd and nothing else. A
  /// name that is not a regular file (a FIFO, a symlink, gone) gets its
  /// verdict without a child.
  VerifyQueue(uv_loop_t* loop, std::string self_exe, std::size_t max_parallel, ChildLimits limits,
              std::size_t max_queued, Done done);
  ~VerifyQueue();
  VerifyQueue(const VerifyQueue&) = delete;
  VerifyQueue& operator=(const VerifyQueue&) = delete;

  /// Queues `job`. A job for a path already waiting replaces it (latest write
  /// wins). False when the queue is full (the caller rescans later).
  bool Enqueue(VerifyJob job);
  /// Drops waiting jobs under `watch` (a removed watch); running ones finish.
  void DropWatch(const std::string& watch);
  /// Applies new parallelism and limits to jobs started from now on.
  void Reconfigure(std::size_t max_parallel, ChildLimits limits, std::size_t max_queued);
  /// Stops starting jobs; kills running children after `grace_ms`; calls
  /// `stopped` once every child is reaped and every handle closed.
  void Shutdown(std::uint64_t grace_ms, std::function<void()> stopped);

  std::size_t waiting() const { return waiting_.size(); }
  /// Enqueue() of a new path would be refused.
  bool full() const { return shutting_down_ || waiting_.size() >= max_queued_; }
  std::size_t running() const { return running_.size(); }
  bool IsRunning(const std::string& path) const;

 private:
  struct Child;
  void StartMore();
  void Start(VerifyJob job);
  void MaybeFinish(Child* child);
  static void OnExit(uv_process_t* process, int64_t exit_status, int term_signal);
  static void OnTimeout(uv_timer_t* timer);

  uv_loop_t* loop_;
  std::string self_exe_;
  std::size_t max_parallel_;
  ChildLimits limits_;
  std::size_t max_queued_;
  Done done_;
  std::deque<VerifyJob> waiting_;
  std::map<Child*, std::unique_ptr<Child>> running_;
  bool shutting_down_ = false;
  std::function<void()> stopped_;
  uv_timer_t* grace_timer_ = nullptr;
};

}  // namespace ckptwatch
