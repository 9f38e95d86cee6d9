// Checkpoint sets in the pipeline (docs/checkpoint-sets.md, "In the daemon"): write events feed
// each watch's CheckpointSets; a directory due to be judged goes to the SetJudge port, off the
// loop (judging reads indexes whoever writes the watch controls); what comes back is reported
// here as `event=checkpoint` lines and failed saves.
#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"

namespace ckptwatch {
namespace {

// Resume pointers remembered as broken per watch (each a path a writer chose).
constexpr std::size_t kMaxBrokenPointers = 10000;
// Files looked at under a directory due to be judged (for its members' verdicts).
constexpr std::size_t kMaxMembersLooked = 100000;

}  // namespace

// A broken set is a failed save with the cause its members give: a member at fault that the
// verifier already judged a failed save (`writer_died`, `disk_full`, ...) says why better
// than the set's own `truncated`.
std::string Pipeline::MemberCause(const Watch& w, const CheckpointEvent& e) const {
  if (e.cause.empty() || e.pointer) return e.cause;
  for (const std::string& member : e.at_fault) {
    const PathRecord* record = w.paths.Find(e.dir + "/" + member);
    if (record && record->remembered && !record->remembered->cause.empty())
      return record->remembered->cause;
  }
  return e.cause;
}

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
      if (w.broken_pointers.erase(event.path))  // a pointer deleted names nothing broken
        reporter_.Report(ResumePointersBroken{w.config.name, w.broken_pointers.size()});
      return w.sets->OnGone(relative);
    default:
      return;
  }
}

// A set's judgement takes its members' own verdicts (a truncated rank file makes it
// incomplete), so it waits while files under its directory are settling or being verified —
// at most checkpoint_settle — and carries the failed ones to the judge.
void Pipeline::JudgeDueSets(Watch& w, Clock::time_point now) {
  auto under = [&w](const std::string& relative) {
    return relative.empty() ? w.config.path : w.config.path + "/" + relative;
  };
  auto busy = [&](const std::string& relative) {
    // A scan under way may bring files of it that no event named (renamed into a directory
    // before its inotify watch existed).
    if (w.scan_running || w.pending_rescan || w.subdir_scans > 0) return true;
    bool in_flight = false;
    std::size_t looked = 0;
    w.paths.ForEachUnder(under(relative), [&](const std::string& path, PathRecord& record) {
      if (++looked > kMaxMembersLooked || in_flight) return;
      in_flight = record.dispatched || record.blocked || w.settle->IsPending(path);
    });
    return in_flight;
  };
  for (SetJudgeRequest& request : w.sets->TakeDue(now, &next_judge_id_, busy)) {
    std::size_t looked = 0;
    w.paths.ForEachUnder(under(request.relative), [&](const std::string& path, PathRecord& record) {
      if (++looked > kMaxMembersLooked || !record.remembered || record.remembered->cause.empty())
        return;
      const auto verdict = ParseVerdict(record.remembered->verdict);
      if (verdict && *verdict != Verdict::kOk)
        request.failed_members[path] = MemberCheck{*verdict, record.remembered->reason};
    });
    set_judge_.Judge(std::move(request));
  }
}

void Pipeline::OnSetsJudged(const SetJudgeResult& result) {
  if (stopping_) return;
  Watch* w = FindWatch(result.request.watch);
  // A watch removed or restarted by a reload meanwhile waits for nothing: dropped.
  if (!w || !w->sets->Accept(result.request, env_.Now())) return;
  const std::string& rel = result.request.relative;
  const std::string run = w->runs.Of(rel.empty() ? w->config.path : w->config.path + "/" + rel,
                                     /*directory=*/true);
  const std::size_t broken_before = w->broken_pointers.size();
  for (const CheckpointEvent& e : result.events) {
    if (e.pointer) {
      if (e.verdict == "ok") {
        w->broken_pointers.erase(e.path);
        continue;
      }
      if (w->broken_pointers.size() < kMaxBrokenPointers) w->broken_pointers.insert(e.path);
    }
    std::vector<LogField> fields{{"watch", w->config.name}};
    if (!run.empty()) fields.push_back({"run", run});
    fields.insert(fields.end(), e.fields.begin(), e.fields.end());
    CheckpointJudged judged;
    judged.watch = w->config.name;
    judged.run = run;
    judged.line = Logged{e.level, LogEvent::kCheckpoint, std::move(fields), e.msg};
    judged.cause = MemberCause(*w, e);
    judged.pointer = e.pointer;
    judged.layout = e.layout;
    judged.verdict = e.verdict;
    if (!e.pointer && e.verdict == "ok") {
      judged.complete_unix = env_.UnixNow();
      w->runs.SetComplete(run, {run, e.path, e.layout, e.step, *judged.complete_unix});
    }
    reporter_.Report(std::move(judged));
  }
  if (w->broken_pointers.size() != broken_before)
    reporter_.Report(ResumePointersBroken{w->config.name, w->broken_pointers.size()});
}

}  // namespace ckptwatch
