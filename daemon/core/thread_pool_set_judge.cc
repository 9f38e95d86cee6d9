#include "core/thread_pool_set_judge.h"

#include <memory>

#include "base/unique_fd.h"
#include "core/real_env.h"
#include "decide/checkpoint_sets.h"

namespace ckptwatch {
struct ThreadPoolSetJudge::Work {
  uv_work_t request{};
  ThreadPoolSetJudge* judge = nullptr;
  std::shared_ptr<UniqueFd> root;  // kept open while the judgement runs
  SetJudgeResult result;
};

void ThreadPoolSetJudge::Judge(SetJudgeRequest request) {
  if (stopped_) return;
  waiting_.push_back(std::move(request));
  StartNext();
}

void ThreadPoolSetJudge::StartNext() {
  if (running_ || waiting_.empty()) return;
  auto* work = new Work;
  work->request.data = work;
  work->judge = this;
  work->result.request = std::move(waiting_.front());
  waiting_.pop_front();
  work->root = env_.Root(work->result.request.watch);
  running_ = true;
  const int rc = uv_queue_work(
      loop_, &work->request,
      [](uv_work_t* request) {
        auto* work = static_cast<Work*>(request->data);
        const SetJudgeRequest& q = work->result.request;
        // A watch whose root is closed (missing, stopped) has nothing to judge: an empty result
        // still tells the pipeline the judgement is over.
        if (work->root && work->root->valid())
          work->result.events = JudgeSetDirectory(work->root->get(), q);
      },
      [](uv_work_t* request, int) { Finish(static_cast<Work*>(request->data)); });
  if (rc != 0) Finish(work);  // never runs: delivered empty now, so nothing waits for it
}

void ThreadPoolSetJudge::Finish(Work* work) {
  std::unique_ptr<Work> done(work);
  ThreadPoolSetJudge* judge = done->judge;
  judge->running_ = false;
  if (!judge->stopped_) judge->deliver_(done->result);
  judge->StartNext();
}

}  // namespace ckptwatch
