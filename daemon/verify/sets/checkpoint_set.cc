#include "verify/sets/checkpoint_set.h"

namespace ckptwatch {

const char* SetVerdictName(SetVerdict verdict) {
  switch (verdict) {
    case SetVerdict::kOk:
      return "ok";
    case SetVerdict::kIncomplete:
      return "incomplete";
    case SetVerdict::kInconsistent:
      return "inconsistent";
  }
  return "inconsistent";
}

void SetReport::Fail(SetVerdict v, const std::string& why, const std::string& member) {
  if (!member.empty()) {
    bool named = false;
    for (const std::string& m : at_fault) named = named || m == member;
    if (!named) at_fault.push_back(member);
  }
  if (verdict != SetVerdict::kOk) return;
  verdict = v;
  reason = why;
}

void SetReport::Missing(const std::string& member, const std::string& why) {
  for (const std::string& m : missing)
    if (m == member) return;
  missing.push_back(member);
  if (verdict == SetVerdict::kOk) {
    verdict = SetVerdict::kIncomplete;
    reason = why;
  }
}

bool ApplyMemberCheck(const MemberCheck& check, const std::string& member, SetReport* report) {
  if (check.verdict == Verdict::kOk) return true;
  const bool short_of_bytes = check.verdict == Verdict::kTruncated ||
                              check.verdict == Verdict::kEmpty ||
                              check.verdict == Verdict::kInProgress;
  report->Fail(short_of_bytes ? SetVerdict::kIncomplete : SetVerdict::kInconsistent,
               member + ": " + std::string(VerdictName(check.verdict)) +
                   (check.reason.empty() ? "" : ": " + check.reason),
               member);
  return false;
}

void ReportUnopened(const OpenedEntry& entry, const std::string& member,
                    const std::string& missing_why, SetReport* report) {
  switch (entry.kind) {
    case EntryKind::kMissing:
      report->Missing(member, missing_why);
      return;
    case EntryKind::kSymlink:
    case EntryKind::kSymlinkInPath:
      report->Fail(SetVerdict::kInconsistent,
                   member + " is a symlink: not followed out of the set's directory", member);
      return;
    case EntryKind::kDenied:
      report->Fail(SetVerdict::kInconsistent, member + ": permission denied", member);
      return;
    default:
      report->Fail(SetVerdict::kInconsistent, member + " is not a regular file that can be read",
                   member);
      return;
  }
}

std::vector<std::int64_t> RankGaps(const std::set<std::int64_t>& ranks) {
  std::vector<std::int64_t> gaps;
  if (ranks.empty()) return gaps;
  for (std::int64_t r = 0; r < *ranks.rbegin() && gaps.size() < 1000; ++r)
    if (!ranks.count(r)) gaps.push_back(r);
  return gaps;
}

std::string Rank2(std::int64_t rank) {
  std::string s = std::to_string(rank);
  return s.size() < 2 ? "0" + s : s;
}

}  // namespace ckptwatch
