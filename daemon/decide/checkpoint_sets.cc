#include "decide/checkpoint_sets.h"

#include <fcntl.h>

#include "base/unique_fd.h"
#include "decide/env.h"  // before pipeline_ports.h, which uses its Snapshot without including it
#include "decide/pipeline_ports.h"
#include "verify/sets/set_finder.h"

namespace ckptwatch {

std::vector<CheckpointEvent> JudgeSetDirectory(int root_fd, const std::string& root_path,
                                               const std::string& relative, Level level) {
  SetCheckOptions options;
  options.level = level;
  std::string err;
  FoundSets found = FindSetsBeneath(root_fd, root_path, relative, options, &err);
  std::vector<CheckpointEvent> events;
  for (const SetCandidate& set : found.sets) events.push_back(DescribeSet(set.Check()));
  for (const PointerReport& pointer : JudgePointers(found))
    if (pointer.verdict != "ok") events.push_back(DescribePointer(pointer));
  return events;
}

std::vector<CheckpointEvent> JudgeSetDirectoryAt(const std::string& root_path,
                                                 const std::string& relative, Level level) {
  UniqueFd root(open(root_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return {};
  return JudgeSetDirectory(root.get(), root_path, relative, level);
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
    for (CheckpointEvent& e : judge_(root_, dir, level_)) {
      std::vector<LogField> fields{{"watch", watch_}};
      fields.insert(fields.end(), e.fields.begin(), e.fields.end());
      reporter_.Report(CheckpointJudged{
          watch_, Logged{e.level, LogEvent::kCheckpoint, std::move(fields), std::move(e.msg)},
          std::move(e.cause)});
    }
  }
}

}  // namespace ckptwatch
