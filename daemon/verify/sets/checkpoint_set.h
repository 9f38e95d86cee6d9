// A checkpoint *set*: one save made of several files that only loads when every one of them is
// there and agrees with the others (a TF bundle's index and data shards, a DCP `.metadata` and its
// .distcp files, an HF index and its shards, a Trainer's checkpoint-N/). The per-layout modules
// beside this file recognise a set by its content and judge it as one thing.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/open_beneath.h"
#include "verify/verdict.h"

namespace ckptwatch {

/// The one verdict a set gets.
enum class SetVerdict {
  kOk,            ///< Every member there, the commit point written, the members agree.
  kIncomplete,    ///< A member missing or truncated, or the commit point missing.
  kInconsistent,  ///< The members disagree (an index names what no shard holds, sizes differ...).
};

/// "ok", "incomplete", "inconsistent".
const char* SetVerdictName(SetVerdict verdict);

/// Every layout a SetReport names, one per module beside this file: the metrics' `layout`
/// label values and docs/checkpoint-sets.md's table (checkpoint_set_test keeps both true).
inline constexpr std::string_view kSetLayouts[] = {
    "tf_bundle", "tf_saved_model", "tf_v1_checkpoint", "dcp",           "hf_sharded",
    "hf_trainer", "deepspeed",     "megatron",         "keras_sharded", "orbax"};

/// What was found out about one set.
struct SetReport {
  std::string path;    ///< The set's directory, or its index/prefix where sets share a directory.
  std::string dir;     ///< The directory `members` and `missing` are relative to.
  std::string layout;  ///< One of kSetLayouts.
  SetVerdict verdict = SetVerdict::kOk;
  std::vector<std::string> members;   ///< Present members, relative to `dir`.
  std::vector<std::string> missing;   ///< Members the set names that are not there.
  std::vector<std::string> at_fault;  ///< Present members that are truncated or disagree.
  std::string reason;                 ///< One line; empty when ok.
  std::int64_t step = -1;             ///< The training step its name or state says, -1 if none.
  std::int64_t mtime_ns = 0;          ///< The newest member's modification time.

  bool ok() const { return verdict == SetVerdict::kOk; }
  /// Makes the verdict `v` with `why`, unless an earlier finding already decided it: the first
  /// incomplete or inconsistent finding is the one reported (its members stay named).
  void Fail(SetVerdict v, const std::string& why, const std::string& member = "");
  /// Records `member` as missing and the set incomplete, with `why`.
  void Missing(const std::string& member, const std::string& why);
};

/// A member's own verdict, from the per-file verifier (format, truncation, structure).
struct MemberCheck {
  Verdict verdict = Verdict::kOk;
  std::string reason;
};

/// How sets are checked: the level, and how a member file that the per-file verifier knows
/// (safetensors, torch.save, .distcp) is verified — given the member's descriptor, opened
/// beneath the set's directory, and the path to show.
struct SetCheckOptions {
  Level level = Level::kStructure;
  std::function<MemberCheck(int fd, const std::string& path)> verify_member;
};

/// Applies a member's own verdict to the set: truncated, empty or in progress makes the set
/// incomplete; any other failure, inconsistent. Returns whether the member was ok.
bool ApplyMemberCheck(const MemberCheck& check, const std::string& member, SetReport* report);

/// Records a member that could not be opened: missing (`missing_why`), or a symlink, FIFO,
/// directory or unreadable name, which is not followed or opened (inconsistent, named).
void ReportUnopened(const OpenedEntry& entry, const std::string& member,
                    const std::string& missing_why, SetReport* report);

/// The ranks in 0..max(`ranks`) that `ranks` lacks: the files of a save by N processes are
/// numbered 0..N-1, so a gap is a process whose file is missing (at most 1,000 returned).
std::vector<std::int64_t> RankGaps(const std::set<std::int64_t>& ranks);

/// "00".."99": a rank as DeepSpeed and Megatron print it (%02d).
std::string Rank2(std::int64_t rank);

}  // namespace ckptwatch
