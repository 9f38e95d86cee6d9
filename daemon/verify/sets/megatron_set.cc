#include "verify/sets/megatron_set.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <regex>

namespace ckptwatch {
namespace {

// "mp_rank_03" (tp 3) or "mp_rank_03_001" (tp 3, pp 1); pp -1 when absent.
bool ParseRankDir(const std::string& n, std::int64_t* tp, std::int64_t* pp) {
  static const std::regex re("mp_rank_([0-9]{2,6})(?:_([0-9]{3,6}))?");
  std::smatch m;
  if (!std::regex_match(n, m, re)) return false;
  *tp = std::stoll(m[1]);
  *pp = m[2].matched ? std::stoll(m[2]) : -1;
  return true;
}

std::string RankDirName(std::int64_t tp, std::int64_t pp) {
  char buf[64];
  if (pp < 0)
    std::snprintf(buf, sizeof buf, "mp_rank_%02lld", static_cast<long long>(tp));
  else
    std::snprintf(buf, sizeof buf, "mp_rank_%02lld_%03lld", static_cast<long long>(tp),
                  static_cast<long long>(pp));
  return buf;
}

}  // namespace

bool LooksLikeMegatron(const std::string& dir_name, const std::vector<std::string>& names) {
  if (StepFromName(dir_name, "iter_") < 0 && dir_name != "release") return false;
  std::int64_t tp, pp;
  for (const std::string& n : names)
    if (ParseRankDir(n, &tp, &pp)) return true;
  return false;
}

SetReport CheckMegatron(const SetDir& dir, const std::string& dir_name,
                        const std::vector<std::string>& names,
                        const std::optional<std::string>& tracker, const SetCheckOptions& options) {
  SetReport r;
  r.layout = "megatron";
  r.path = dir.path();
  r.dir = dir.path();
  r.step = StepFromName(dir_name, "iter_");
  std::set<std::int64_t> tps, pps;
  std::set<std::pair<std::int64_t, std::int64_t>> present;
  bool with_pp = false;
  for (const std::string& n : names) {
    std::int64_t tp, pp;
    if (!ParseRankDir(n, &tp, &pp) || !dir.Stat(n).is_dir) continue;
    tps.insert(tp);
    if (pp >= 0) pps.insert(pp), with_pp = true;
    present.insert({tp, pp});
  }
  // The grid the saving processes formed: tensor ranks 0..T-1 x pipeline ranks 0..P-1.
  const std::int64_t t_max = tps.empty() ? 0 : *tps.rbegin();
  const std::int64_t p_max = pps.empty() ? -1 : *pps.rbegin();
  bool distrib = false;
  std::map<std::string, std::vector<std::string>> files;
  for (const auto& [tp, pp] : present) {
    const std::string sub = RankDirName(tp, pp);
    files[sub] = dir.List(sub, 1000);
    distrib =
        distrib || std::binary_search(files[sub].begin(), files[sub].end(), "distrib_optim.pt");
  }
  for (std::int64_t tp = 0; tp <= t_max; ++tp)
    for (std::int64_t pp = with_pp ? 0 : -1; pp <= (with_pp ? p_max : -1); ++pp) {
      const std::string sub = RankDirName(tp, pp);
      if (!present.count({tp, pp})) {
        r.Missing(sub + "/model_optim_rng.pt",
                  sub + "/ is missing: tensor rank " + std::to_string(tp) +
                      (with_pp ? ", pipeline rank " + std::to_string(pp) : "") + " did not save");
        continue;
      }
      for (const char* want : {"model_optim_rng.pt", "distrib_optim.pt"}) {
        const std::string member = sub + "/" + want;
        if (!std::binary_search(files[sub].begin(), files[sub].end(), want)) {
          if (std::string(want) == "model_optim_rng.pt" || distrib)
            r.Missing(member, member + " is missing: that rank's save did not finish");
          continue;
        }
        r.members.push_back(member);
        if (!options.verify_member) continue;
        OpenedEntry f = dir.Open(member);
        if (f.kind != EntryKind::kRegular) {
          r.Fail(SetVerdict::kInconsistent,
                 member + " is not a regular file (a symlink is not followed)", member);
          continue;
        }
        ApplyMemberCheck(options.verify_member(f.fd.get(), dir.Join(member)), member, &r);
      }
    }
  if (tracker) {
    std::string text = *tracker;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    const std::int64_t named = StepFromName("iter_" + text, "iter_");
    if (r.step >= 0 && named >= 0 && named < r.step)
      r.Fail(SetVerdict::kIncomplete,
             "not committed: latest_checkpointed_iteration.txt still says " +
                 std::to_string(named) +
                 " (Megatron writes it after every rank's files; load_checkpoint will not load " +
                 dir_name + ")");
  }
  return r;
}

}  // namespace ckptwatch
