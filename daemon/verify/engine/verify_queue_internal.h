// The state VerifyQueue keeps per running job, per zygote and per warm verifier; shared by
// verify_queue.cc and verify_queue_warm.cc.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "verify/engine/verify_queue.h"

namespace ckptwatch {

struct VerifyQueue::Child {
  VerifyQueue* queue = nullptr;
  VerifyJob job;
  UniqueFd file;  // held from the open until a child has its own copy
  uv_work_t first_look{};
  std::optional<VerifyResult> first_verdict;  // computed on the thread pool
  uv_process_t process{};
  uv_pipe_t out{};
  uv_pipe_t err{};
  uv_timer_t timer{};
  ChildOutcome outcome;
  std::optional<VerifyResult> settled;  // a verdict without a child: unopened, or the first look's
  std::chrono::steady_clock::time_point started;
  Zygote* zygote = nullptr;  // forked by this zygote (no uv_process_t of ours)
  std::uint64_t id = 0;      // its id at the zygote (a warm verifier's while it serves this job)
  Warm* warm = nullptr;      // the warm verifier serving it
  uid_t file_owner = 0;      // st_uid of the descriptor opened for it
  bool warm_reported = false;  // its warm verifier reported the job done
  int open_handles = 0;
  bool pipes = false;  // `out` and `err` are open: its own pipes, not a warm verifier's
  bool exited = false;
  bool out_done = false;
  bool err_done = false;
  bool finished = false;
  bool spawned = false;      // a uv_process_t of ours runs it
  bool abandoned = false;    // killed by Shutdown: no verdict is reported
  bool zygote_died = false;  // its zygote died before reporting its exit
};

struct VerifyQueue::Zygote {
  VerifyQueue* queue = nullptr;
  uv_process_t process{};
  uv_poll_t poll{};
  int socket = -1;
  int open_handles = 0;
  bool polling = false;  // the poll handle is open
  bool exited = false;
  bool lost = false;        // no longer serves jobs
  bool unexpected = false;  // lost while the daemon was not stopping: reported
  bool process_closing = false;
  std::uint64_t restart_ms = 0;  // when the next zygote starts
  std::string how;               // how it ended
  std::chrono::steady_clock::time_point started;
};

struct VerifyQueue::Warm {
  VerifyQueue* queue = nullptr;
  Zygote* zygote = nullptr;  // it forked this verifier; it dies with it
  std::uint64_t id = 0;      // its id at the zygote: kill, exit report
  uid_t owner = 0;           // the one owner whose files it gets, once `bound`
  bool bound = false;        // false: the spare, which has seen no file (StartSpares())
  bool warmed = false;       // it reported that it warmed up (kWarmReadyJob)
  ChildLimits limits;        // it was started with
  int channel = -1;
  uv_poll_t poll{};
  uv_timer_t idle{};
  // Its stdout and stderr (read ends, non-blocking), handed over with its first job and kept
  // for its life (WarmOutput::kKeep): what comes on them belongs to the job it serves, and is
  // all written when that job's report comes. -1 until its first job.
  int output[2] = {-1, -1};
  uv_poll_t output_poll[2]{};
  int open_handles = 0;
  Child* busy = nullptr;   // the job it verifies now
  std::size_t files = 0;   // jobs sent to it
  pid_t pid = 0;           // as the zygote reported it
  bool retiring = false;   // takes no more jobs
  bool closing = false;    // its handles are closing (its channel with them)
  bool gone = false;       // its exit was reported, or its zygote was lost
};

}  // namespace ckptwatch
