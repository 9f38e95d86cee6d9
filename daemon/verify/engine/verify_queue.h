// The daemon's verification queue: each file gets a first look in the daemon
// (FirstLook(), on libuv's thread pool), and when that does not settle it an
// isolated verifier child, forked by the pre-forked zygote (verifier_zygote.h)
// or, while no zygote runs, spawned with uv_spawn; at most `max_parallel` at a
// time, each killed at its deadline. The loop never blocks on disk I/O or HDF5.
#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "verify/engine/fair_queue.h"
#include "verify/engine/verifier_child.h"
#include "verify/engine/verify_job.h"
#include "verify/engine/warm_channel.h"

namespace ckptwatch {

struct ZygoteReport;  // verifier_zygote.h

class VerifyQueue {
 public:
  using Done = std::function<void(const VerifyJob& job, const VerifyResult& result)>;
  /// Told when the zygote ended unexpectedly (`how`: its exit status or signal) and
  /// will be restarted after `restart_ms`.
  using ZygoteLost = std::function<void(const std::string& how, std::uint64_t restart_ms)>;
  /// Told when a warm verifier reported files of more than one owner: it was killed (defence
  /// in depth; the queue never sends it one, so this means a bug or a subverted verifier).
  using VerifierAlarm = std::function<void(const std::string& message)>;

  /// Starts `self_exe __verify-zygote`, which forks confined verifiers: a warm one per owner
  /// (st_uid) of the files, reused for up to `max_files` of that owner's files
  /// (ConfigureWarm(); verify_queue_warm.cc), each file handed over as descriptor
  /// kVerifierChildFd; with warm verifiers off, a one-shot child per file;
  /// while it is not running, `self_exe __verify-child …` is spawned instead. A
  /// name that is not a regular file (a FIFO, a symlink, gone) gets its verdict
  /// without a child, and so does a file FirstLook() settles.
  VerifyQueue(uv_loop_t* loop, std::string self_exe, std::size_t max_parallel, ChildLimits limits,
              std::size_t max_queued, Done done, ZygoteLost zygote_lost = nullptr,
              VerifierAlarm alarm = nullptr);
  ~VerifyQueue();
  VerifyQueue(const VerifyQueue&) = delete;
  VerifyQueue& operator=(const VerifyQueue&) = delete;

  /// Queues `job` in its watch's lane for the file's owner: jobs start one
  /// watch after another, one owner after another (fair_queue.h), so one
  /// user's flood cannot hold back another's verdict. A job for a path already
  /// waiting replaces it (latest write wins). False when the queue is full
  /// (the caller rescans later).
  bool Enqueue(VerifyJob job);
  /// Warm verifiers: each serves at most `max_files` files (0: none is warm, a one-shot child
  /// per file, as before issue 26) and leaves after `idle_ms` without one.
  void ConfigureWarm(std::size_t max_files, std::uint64_t idle_ms);
  /// Calls `ready` once, when a warm verifier first reports that it warmed up and waits for a
  /// file (the daemon's READY): right away when warm verifiers are off.
  void WhenWarm(std::function<void()> ready);
  /// Drops waiting jobs under `watch` (a removed watch); running ones finish.
  void DropWatch(const std::string& watch);
  /// Applies new parallelism and limits to jobs started from now on.
  void Reconfigure(std::size_t max_parallel, ChildLimits limits, std::size_t max_queued);
  /// Stops starting jobs; kills running children after `grace_ms`; stops the
  /// zygote; calls `stopped` once every child is reaped and every handle closed.
  void Shutdown(std::uint64_t grace_ms, std::function<void()> stopped);

  std::size_t waiting() const { return waiting_.size(); }
  /// Enqueue() of a new path would be refused.
  bool full() const { return shutting_down_ || waiting_.size() >= max_queued_; }
  std::size_t running() const { return running_.size(); }
  /// Warm verifiers alive (serving, idle, or leaving).
  std::size_t warm_verifiers() const { return warms_.size(); }

 private:
  struct Child;
  struct Zygote;
  struct Warm;
  void StartMore();
  void Start(VerifyJob job);
  void AfterFirstLook(Child* child);
  bool ForkInZygote(Child* child);
  using HandOverSend =
      std::function<bool(const std::vector<std::string>& args, int out_fd, int err_fd)>;
  bool HandOver(Child* child, const HandOverSend& send, int read_ends[2]);
  void SpawnChild(Child* child);
  void WatchPipes(Child* child, int out_fd, int err_fd);
  void WatchOutput(Child* child);
  /// The job's timeout alone (a warm verifier's output is its own: DrainWarmOutput()).
  void WatchTimeout(Child* child);
  /// Starts the job's deadline on its (initialised) timer.
  void StartTimeout(Child* child);
  std::vector<std::string> JobArgs(const Child* child) const;
  void MaybeFinish(Child* child);
  void Release(Child* child);
  void StartZygote();
  void OnZygoteReport(Zygote* zygote);
  int DrainZygoteReports(Zygote* zygote);
  void LoseZygote(Zygote* zygote);
  void MaybeStopped();
  // verify_queue_warm.cc
  bool RunInWarm(Child* child);
  Warm* StartWarm(std::optional<uid_t> owner);
  /// Keeps max_parallel_ spares: warm verifiers forked, warmed up and confined before any file
  /// needs them, each bound to the owner of the first file it gets. As many as may verify at
  /// once, so that the first files of a burst (a sharded save) need no fork either.
  void StartSpares();
  Warm* TakeSpare(uid_t owner);
  /// Forked by the zygote that serves jobs now, with the limits of now: may take files.
  bool Current(const Warm& warm) const;
  void TrimWarms();
  void OnWarmReadable(Warm* warm);
  /// Opens `warm`'s output pipes; the write ends, for its first job, in `theirs`.
  bool OpenWarmOutput(Warm* warm, int theirs[2]);
  /// Reads what `warm` wrote to its output `which` (0 stdout, 1 stderr) into the job it serves.
  /// False when it wrote with no job to serve: it is out of step, and killed.
  bool ReadWarmOutput(Warm* warm, int which);
  /// The job `warm` serves is over (its report, or its exit): the rest of its output is read.
  void DrainWarmOutput(Warm* warm, Child* child);
  void OnWarmReport(Warm* warm, const WarmReport& report);
  bool HandleWarmZygoteReport(const ZygoteReport& report);
  void WarmJobDone(Child* child);
  void StartSuccessor(const Warm* worn);
  /// An idle `warm` leaves after warm_idle_ms_ unless a job comes (RunInWarm() stops the timer).
  void StartIdleTimer(Warm* warm);
  void RetireWarm(Warm* warm);
  void LoseWarms(Zygote* zygote);
  static void OnWarmHandleClosed(uv_handle_t* handle);
  static void OnExit(uv_process_t* process, int64_t exit_status, int term_signal);
  static void OnTimeout(uv_timer_t* timer);
  static void OnZygoteHandleClosed(uv_handle_t* handle);

  uv_loop_t* loop_;
  std::string self_exe_;
  std::size_t max_parallel_;
  ChildLimits limits_;
  std::size_t max_queued_;
  Done done_;
  FairQueue<VerifyJob> waiting_;  // per watch, then per owner, in turn
  std::map<Child*, std::unique_ptr<Child>> running_;
  ZygoteLost zygote_lost_;
  Zygote* zygote_ = nullptr;  // the one serving jobs; null while (re)starting
  int zygotes_alive_ = 0;     // including lost ones whose handles are still closing
  uv_timer_t* restart_timer_ = nullptr;
  std::uint64_t restart_backoff_ms_ = 1000;
  std::map<std::uint64_t, Child*> forked_;  // by job id, until the zygote reports the exit
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::unique_ptr<Warm>> warms_;  // by their id at the zygote
  std::size_t warm_max_files_ = kWarmDefaultMaxFiles;
  std::uint64_t warm_idle_ms_ = kWarmIdleMs;
  VerifierAlarm alarm_;
  std::function<void()> warm_ready_;  // WhenWarm()
  bool starting_ = false;  // inside StartMore()
  bool shutting_down_ = false;
  std::function<void()> stopped_;
  uv_timer_t* grace_timer_ = nullptr;
};

}  // namespace ckptwatch
