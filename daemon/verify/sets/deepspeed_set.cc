#include "verify/sets/deepspeed_set.h"

#include <algorithm>
#include <map>
#include <regex>

namespace ckptwatch {
namespace {

// Parses "mp_rank_03_model_states.pt" and "[bf16_]zero_pp_rank_7_mp_rank_03_optim_states.pt".
bool ParseModelStates(const std::string& n, std::int64_t* mp) {
  static const std::regex re("mp_rank_([0-9]{1,6})_model_states\\.pt");
  std::smatch m;
  if (!std::regex_match(n, m, re)) return false;
  *mp = std::stoll(m[1]);
  return true;
}

bool ParseOptimStates(const std::string& n, std::int64_t* dp, std::int64_t* mp,
                      std::string* prefix) {
  static const std::regex re(
      "((?:bf16_)?zero_pp_rank_)([0-9]{1,6})_mp_rank_([0-9]{1,6})_optim_states\\.pt");
  std::smatch m;
  if (!std::regex_match(n, m, re)) return false;
  *prefix = m[1];
  *dp = std::stoll(m[2]);
  *mp = std::stoll(m[3]);
  return true;
}

}  // namespace

bool LooksLikeDeepSpeed(const std::vector<std::string>& names) {
  std::int64_t a, b;
  std::string p;
  for (const std::string& n : names)
    if (ParseModelStates(n, &a) || ParseOptimStates(n, &a, &b, &p)) return true;
  return false;
}

SetReport CheckDeepSpeed(const SetDir& dir, const std::string& tag,
                         const std::vector<std::string>& names,
                         const std::optional<std::string>& latest, const SetCheckOptions& options) {
  SetReport r;
  r.layout = "deepspeed";
  r.path = dir.path();
  r.dir = dir.path();
  r.step = StepFromName(tag, "global_step");
  std::set<std::int64_t> model_mp;
  std::map<std::int64_t, std::set<std::int64_t>> zero_dp;  // mp -> dp ranks
  std::string zero_prefix = "zero_pp_rank_";
  std::vector<std::string> files;
  for (const std::string& n : names) {
    std::int64_t mp, dp;
    std::string prefix;
    if (ParseModelStates(n, &mp))
      model_mp.insert(mp), files.push_back(n);
    else if (ParseOptimStates(n, &dp, &mp, &prefix))
      zero_dp[mp].insert(dp), zero_prefix = prefix, files.push_back(n);
    else if (n.size() > 16 && n.compare(n.size() - 16, 16, "-model_states.pt") == 0)
      files.push_back(n);
  }
  if (model_mp.empty())
    r.Missing("mp_rank_00_model_states.pt",
              "mp_rank_00_model_states.pt is missing: no model states in " + tag);
  for (std::int64_t gap : RankGaps(model_mp)) {
    const std::string name = "mp_rank_" + Rank2(gap) + "_model_states.pt";
    r.Missing(name, name + " is missing: model-parallel rank " + std::to_string(gap) + " of " +
                        std::to_string(*model_mp.rbegin() + 1) + " did not write its states");
  }
  std::size_t dp_ranks = 0;
  for (const auto& [mp, dps] : zero_dp)
    dp_ranks = std::max<std::size_t>(dp_ranks, static_cast<std::size_t>(*dps.rbegin() + 1));
  if (!zero_dp.empty()) {
    std::int64_t mp_max = model_mp.empty() ? 0 : *model_mp.rbegin();
    for (const auto& [mp, dps] : zero_dp) mp_max = std::max(mp_max, mp);
    for (std::int64_t mp = 0; mp <= mp_max; ++mp) {
      if (!model_mp.count(mp) && zero_dp.count(mp))
        r.Missing(
            "mp_rank_" + Rank2(mp) + "_model_states.pt",
            "mp_rank_" + Rank2(mp) + "_model_states.pt is missing; its optimizer states are there");
      for (std::size_t dp = 0; dp < dp_ranks; ++dp)
        if (!zero_dp[mp].count(static_cast<std::int64_t>(dp))) {
          const std::string name =
              zero_prefix + std::to_string(dp) + "_mp_rank_" + Rank2(mp) + "_optim_states.pt";
          r.Missing(name, name + " is missing: data-parallel rank " + std::to_string(dp) + " of " +
                              std::to_string(dp_ranks) +
                              " did not write its ZeRO optimizer states");
        }
    }
  }
  for (const std::string& n : files) {
    r.members.push_back(n);
    if (!options.verify_member) continue;
    OpenedEntry f = dir.Open(n);
    if (f.kind != EntryKind::kRegular) {
      r.Fail(SetVerdict::kInconsistent, n + " is not a regular file (a symlink is not followed)",
             n);
      continue;
    }
    ApplyMemberCheck(options.verify_member(f.fd.get(), dir.Join(n)), n, &r);
  }
  if (latest && *latest != tag) {
    const std::int64_t named = StepFromName(*latest, "global_step");
    if (r.step >= 0 && named >= 0 && named < r.step)
      r.Fail(
          SetVerdict::kIncomplete,
          "not committed: `latest` still names " + latest->substr(0, 200) +
              " (DeepSpeed writes it after every rank's files; load_checkpoint() will not load " +
              tag + ")");
  }
  return r;
}

}  // namespace ckptwatch
