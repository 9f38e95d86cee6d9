#include "decide/problem_set.h"

namespace ckptwatch {

ProblemSet::Change ProblemSet::Set(const std::string& problem, bool active, const std::string& reason) {
  auto it = active_.find(problem);
  if (active && it == active_.end()) {
    active_.emplace(problem, reason);
    return Change::kStarted;
  }
  if (!active && it != active_.end()) {
    active_.erase(it);
    return Change::kCleared;
  }
  return Change::kNone;
}

std::string ProblemSet::Reason(const std::string& problem) const {
  auto it = active_.find(problem);
  return it == active_.end() ? "" : it->second;
}

}  // namespace ckptwatch
