#include "decide/checkpoint_sets.h"

#include "decide/env.h"  // before pipeline_ports.h, which uses its Snapshot without including it
#include "decide/pipeline_ports.h"
#include "verify/sets/set_finder.h"

namespace ckptwatch {

std::vector<CheckpointEvent> JudgeSetDirectory(const std::string& dir_path, Level level) {
  SetCheckOptions options;
  options.level = level;
  std::string err;
  FoundSets found = FindSets(dir_path, false, options, &err, /*depth=*/0);
  std::vector<CheckpointEvent> events;
  for (const SetCandidate& set : found.sets) events.push_back(DescribeSet(set.Check()));
  for (const PointerReport& pointer : JudgePointers(found))
    if (pointer.verdict != "ok") events.push_back(DescribePointer(pointer));
  return events;
}

CheckpointSets::CheckpointSets(std::string watch, std::string root, const WatchConfig& config,
                               Reporter& reporter, Judge judge)
    : watch_(std::move(watch)),
      root_(std::move(root)),
      level_(config.level),
      reporter_(reporter),
      judge_(std::move(judge)),
      tracker_(config.checkpoint_settle) {}

void CheckpointSets::Apply(const WatchConfig& config) {
  level_ = config.level;
  tracker_.set_settle(config.checkpoint_settle);
}

void CheckpointSets::OnDue(Clock::time_point now) {
  for (const std::string& dir : tracker_.TakeDue(now)) {
    const std::string path = dir.empty() ? root_ : root_ + "/" + dir;
    for (CheckpointEvent& e : judge_(path, level_)) {
      std::vector<LogField> fields{{"watch", watch_}};
      fields.insert(fields.end(), e.fields.begin(), e.fields.end());
      reporter_.Report(CheckpointJudged{
          watch_, Logged{e.level, LogEvent::kCheckpoint, std::move(fields), std::move(e.msg)},
          std::move(e.cause)});
    }
  }
}

}  // namespace ckptwatch
