#include "decide/checkpoint_event.h"

namespace ckptwatch {
namespace {

constexpr std::size_t kMaxNamed = 20;

std::string JoinedCapped(const std::vector<std::string>& names) {
  std::string text;
  for (std::size_t i = 0; i < names.size() && i < kMaxNamed; ++i) text += (i ? "," : "") + names[i];
  if (names.size() > kMaxNamed)
    text += ",... " + std::to_string(names.size() - kMaxNamed) + " more";
  return text;
}

bool IsCommitName(const std::string& name) {
  for (const char* c : {".metadata", "saved_model.pb", "trainer_state.json"})
    if (name == c) return true;
  return name.size() > 6 && name.compare(name.size() - 6, 6, ".index") == 0;
}

std::string CauseOf(const SetReport& r) {
  if (r.verdict == SetVerdict::kInconsistent) {
    // A member that failed its own verification keeps that verdict as the cause.
    for (const char* v : {"corrupt", "nonfinite", "not_checkpoint", "timeout", "verifier_crashed"})
      if (r.reason.find(std::string(": ") + v) != std::string::npos) return v;
    return "inconsistent_set";
  }
  if (r.reason.rfind("not committed", 0) == 0) return "no_commit_point";
  for (const std::string& m : r.missing)
    if (IsCommitName(m.substr(m.rfind('/') + 1))) return "no_commit_point";
  if (!r.at_fault.empty()) return "truncated";
  return "missing_member";
}

}  // namespace

CheckpointEvent DescribeSet(const SetReport& r) {
  CheckpointEvent e;
  e.path = r.path;
  e.layout = r.layout;
  e.verdict = SetVerdictName(r.verdict);
  e.dir = r.dir;
  e.at_fault = r.at_fault;
  e.step = r.step;
  e.level = r.ok() ? LogLevel::kInfo : LogLevel::kError;
  e.fields = {{"path", r.path},
              {"layout", r.layout},
              {"verdict", SetVerdictName(r.verdict)},
              {"members", std::to_string(r.members.size())}};
  if (!r.missing.empty()) e.fields.push_back({"missing", JoinedCapped(r.missing)});
  if (!r.at_fault.empty()) e.fields.push_back({"at_fault", JoinedCapped(r.at_fault)});
  if (r.step >= 0) e.fields.push_back({"step", std::to_string(r.step)});
  if (!r.ok()) {
    e.cause = CauseOf(r);
    e.fields.push_back({"cause", e.cause});
  }
  e.msg = r.ok() ? "checkpoint set complete" : r.reason;
  return e;
}

CheckpointEvent DescribePointer(const PointerReport& p) {
  CheckpointEvent e;
  e.pointer = true;
  e.path = p.path;
  e.layout = p.kind;
  e.verdict = p.verdict;
  e.level = p.verdict == "ok" ? LogLevel::kDebug : LogLevel::kWarn;
  e.fields = {{"path", p.path}, {"pointer", p.kind}, {"names", p.target}, {"verdict", p.verdict}};
  if (!p.last_complete.empty()) e.fields.push_back({"last_complete", p.last_complete});
  e.msg = p.verdict == "ok" ? "resume pointer names a complete checkpoint" : p.reason;
  return e;
}

}  // namespace ckptwatch
