// Judging checkpoint sets on libuv's thread pool (the SetJudge port, decide/pipeline_ports.h):
// a set's index is read by whoever can write the watch's rules (a DCP .metadata of hundreds of
// MiB, a FIFO named like one is never opened but a slow disk is slow), so never on the loop.
// One judgement runs at a time, the rest wait in order: scans and first looks share the pool
// and must not wait behind a flood of sets. Each reads beneath the watch root's descriptor,
// held open while it runs; its result is delivered on the loop.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>

#include "decide/pipeline_ports.h"

namespace ckptwatch {

class RealEnv;

class ThreadPoolSetJudge : public SetJudge {
 public:
  using Deliver = std::function<void(const SetJudgeResult&)>;
  ThreadPoolSetJudge(uv_loop_t* loop, const RealEnv& env, Deliver deliver)
      : loop_(loop), env_(env), deliver_(std::move(deliver)) {}
  void Judge(SetJudgeRequest request) override;
  /// Drops the judgements not started (the daemon stops); a running one finishes on its own.
  void Stop() {
    stopped_ = true;
    waiting_.clear();
  }
  bool busy() const { return running_; }

 private:
  struct Work;
  void StartNext();
  /// On the loop: the judgement is over, delivered; the next one starts.
  static void Finish(Work* work);
  uv_loop_t* loop_;
  const RealEnv& env_;
  Deliver deliver_;
  std::deque<SetJudgeRequest> waiting_;
  bool running_ = false, stopped_ = false;
};

}  // namespace ckptwatch
