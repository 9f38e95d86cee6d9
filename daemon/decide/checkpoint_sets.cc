#include "decide/checkpoint_sets.h"

#include "verify/sets/set_finder.h"

namespace ckptwatch {

std::vector<CheckpointEvent> JudgeSetDirectory(int root_fd, const std::string& root_path,
                                               const std::string& relative, Level level) {
  SetJudgeRequest request;
  request.root_path = root_path;
  request.relative = relative;
  request.level = level;
  return JudgeSetDirectory(root_fd, request);
}

std::vector<CheckpointEvent> JudgeSetDirectory(int root_fd, const SetJudgeRequest& request) {
  SetCheckOptions options;
  options.level = request.level;
  if (!request.failed_members.empty())
    options.verify_member = [&request](int, const std::string& path) {
      auto it = request.failed_members.find(path);
      return it == request.failed_members.end() ? MemberCheck{} : it->second;
    };
  std::string err;
  FoundSets found = FindSetsBeneath(root_fd, request.root_path, request.relative, options, &err);
  std::vector<CheckpointEvent> events;
  for (const SetCandidate& set : found.sets) events.push_back(DescribeSet(set.Check()));
  if (found.pointers.empty()) return events;
  // A pointer that names a broken set names the last complete one beside it: the sets of the
  // subdirectories are recognised for that (and judged only as far as it needs), not reported.
  const FoundSets wide =
      FindSetsBeneath(root_fd, request.root_path, request.relative, options, &err, /*depth=*/1);
  for (const PointerReport& pointer : JudgePointers(wide))
    events.push_back(DescribePointer(pointer));
  return events;
}

CheckpointSets::CheckpointSets(std::string watch, std::string root, const WatchConfig& config)
    : watch_(std::move(watch)),
      root_(std::move(root)),
      level_(config.level),
      tracker_(config.checkpoint_settle, config.settle),
      max_wait_(config.checkpoint_settle) {}

void CheckpointSets::Apply(const WatchConfig& config) {
  level_ = config.level;
  max_wait_ = config.checkpoint_settle;
  tracker_.set_settle(config.checkpoint_settle, config.settle);
}

std::vector<SetJudgeRequest> CheckpointSets::TakeDue(
    Clock::time_point now, std::uint64_t* next_id,
    const std::function<bool(const std::string& dir)>& busy) {
  std::vector<SetJudgeRequest> out;
  for (std::string& dir : tracker_.TakeDue(now)) {
    if (in_flight_.count(dir)) {
      again_.insert(std::move(dir));
      continue;
    }
    if (busy && busy(dir)) {
      const Clock::time_point since = busy_since_.emplace(dir, now).first->second;
      if (now - since < max_wait_) {
        tracker_.MarkDue(dir, now + kBusyRecheck);
        continue;
      }
    }
    busy_since_.erase(dir);
    const std::uint64_t id = ++*next_id;
    in_flight_[dir] = id;
    out.push_back(SetJudgeRequest{id, watch_, root_, std::move(dir), level_, {}});
  }
  return out;
}

bool CheckpointSets::Accept(const SetJudgeRequest& request, Clock::time_point now) {
  auto it = in_flight_.find(request.relative);
  if (it == in_flight_.end() || it->second != request.id) return false;
  in_flight_.erase(it);
  // Written again while it was judged: that save gets its own judgement, now.
  if (again_.erase(request.relative)) tracker_.MarkDue(request.relative, now);
  return true;
}

}  // namespace ckptwatch
