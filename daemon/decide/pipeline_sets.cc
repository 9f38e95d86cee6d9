// Checkpoint sets in the pipeline (docs/checkpoint-sets.md, "In the daemon"): write events feed
// each watch's CheckpointSets; a directory due to be judged goes to the SetJudge port, off the
// loop (judging reads indexes whoever writes the watch controls); what comes back is reported
// here as `event=checkpoint` lines and failed saves.
#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"

namespace ckptwatch {

void Pipeline::NewSets(Watch& w) {
  w.sets = std::make_unique<CheckpointSets>(w.config.name, w.config.path, w.config);
}

void Pipeline::SetEvent(Watch& w, const WatchEvent& event) {
  // Every name under the root that is not excluded: a set's index or commit point matches no
  // weight pattern. A staging directory (tmp-checkpoint-*) is excluded until renamed.
  if (!Wanted(w, event.path)) return;
  const std::string relative = RelativeTo(w.config.path, event.path);
  const Clock::time_point now = env_.Now();
  switch (event.kind) {
    case WatchEvent::Kind::kFileWritten:
      return w.sets->OnWrite(relative, now, /*closed=*/true);
    case WatchEvent::Kind::kFileWriting:
      return w.sets->OnWrite(relative, now, /*closed=*/false);
    case WatchEvent::Kind::kDirectoryCreated:
      return w.sets->OnArrived(relative, now);
    case WatchEvent::Kind::kNameGone:
    case WatchEvent::Kind::kDirectoryGone:
      return w.sets->OnGone(relative);
    default:
      return;
  }
}

void Pipeline::JudgeDueSets(Watch& w, Clock::time_point now) {
  for (SetJudgeRequest& request : w.sets->TakeDue(now, &next_judge_id_))
    set_judge_.Judge(std::move(request));
}

void Pipeline::OnSetsJudged(const SetJudgeResult& result) {
  if (stopping_) return;
  Watch* w = FindWatch(result.request.watch);
  // A watch removed or restarted by a reload meanwhile waits for nothing: dropped.
  if (!w || !w->sets->Accept(result.request, env_.Now())) return;
  const std::string& rel = result.request.relative;
  const std::string run = RunOf(*w, rel.empty() ? w->config.path : w->config.path + "/" + rel,
                                /*directory=*/true);
  for (const CheckpointEvent& e : result.events) {
    if (e.pointer && e.verdict == "ok") continue;
    std::vector<LogField> fields{{"watch", w->config.name}};
    if (!run.empty()) fields.push_back({"run", run});
    fields.insert(fields.end(), e.fields.begin(), e.fields.end());
    reporter_.Report(CheckpointJudged{w->config.name, run,
                                      Logged{e.level, LogEvent::kCheckpoint, std::move(fields), e.msg},
                                      e.cause});
  }
}

}  // namespace ckptwatch
