#include "verify/sets/orbax_set.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

namespace ckptwatch {
namespace {

constexpr const char* kStepMetadata = "_CHECKPOINT_METADATA";
constexpr const char* kV1Marker = "orbax.checkpoint";
constexpr const char* kManifest = "manifest.ocdbt";
constexpr const char* kProcessPrefix = "ocdbt.process_";
// A step's metadata is a few KiB (item handler names, metrics); the cap is for hostile files.
constexpr std::size_t kMaxStepMetadataBytes = 16u << 20;

// The process number of "ocdbt.process_<p>", or -1.
std::int64_t ProcessOf(const std::string& name) {
  if (name.compare(0, std::string(kProcessPrefix).size(), kProcessPrefix) != 0) return -1;
  const std::string digits = name.substr(std::string(kProcessPrefix).size());
  if (digits.empty() || digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  return std::strtoll(digits.c_str(), nullptr, 10);
}

// Whether `names` (one directory's) are a PyTree item's: OCDBT files or their per-process dirs.
bool LooksLikePyTree(const std::vector<std::string>& names) {
  if (Listed(names, kManifest) || Listed(names, "_sharding") || Listed(names, "array_metadatas"))
    return true;
  return std::any_of(names.begin(), names.end(),
                     [](const std::string& n) { return ProcessOf(n) >= 0; });
}

// `at` ("" or "state/") holds an OCDBT store: its manifest and its data directory.
void CheckStore(const SetDir& dir, const std::string& at, const std::vector<std::string>& names,
                SetReport* r) {
  if (Listed(names, kManifest)) {
    const MemberStat manifest = dir.Stat(at + kManifest);
    if (manifest.kind == EntryKind::kRegular && manifest.size > 0) r->members.push_back(at + kManifest);
    else if (manifest.kind == EntryKind::kRegular)
      r->Fail(SetVerdict::kIncomplete, at + kManifest + " is empty", at + kManifest);
    else
      r->Fail(SetVerdict::kInconsistent, at + kManifest + " is not a regular file", at + kManifest);
  } else {
    r->Missing(at + kManifest, at + kManifest +
                                   " is missing: the item's OCDBT store has no manifest, it does "
                                   "not load");
  }
  if (!Listed(names, "d") || !dir.Stat(at + "d").is_dir)
    r->Missing(at + "d/", at + "d/ is missing: the item's data files are not there");
}

void CheckPyTree(const SetDir& dir, const std::string& at, const std::vector<std::string>& names,
                 SetReport* r) {
  CheckStore(dir, at, names, r);
  std::set<std::int64_t> processes;
  for (const std::string& n : names) {
    const std::int64_t p = ProcessOf(n);
    if (p < 0 || !dir.Stat(at + n).is_dir) continue;
    processes.insert(p);
    CheckStore(dir, at + n + "/", dir.List(at + n), r);
  }
  for (std::int64_t gap : RankGaps(processes))
    r->Missing(at + kProcessPrefix + std::to_string(gap) + "/",
               at + kProcessPrefix + std::to_string(gap) +
                   "/ is missing: a process's part of the save is not there");
}

}  // namespace

bool LooksLikeOrbax(const std::vector<std::string>& names) {
  return Listed(names, kStepMetadata) || Listed(names, kV1Marker);
}

SetReport CheckOrbax(const SetDir& dir, const std::string& step_name,
                     const std::vector<std::string>& names) {
  SetReport r;
  r.layout = "orbax";
  r.path = dir.path();
  r.dir = dir.path();
  const std::size_t digits = step_name.find_last_not_of("0123456789");
  const std::string tail = digits == std::string::npos ? step_name : step_name.substr(digits + 1);
  if (!tail.empty() && tail.size() <= 18) r.step = std::strtoll(tail.c_str(), nullptr, 10);
  if (Listed(names, kStepMetadata)) {
    std::string text, err;
    if (!dir.ReadSmall(kStepMetadata, kMaxStepMetadataBytes, &text, &err)) {
      r.Fail(SetVerdict::kInconsistent, err, kStepMetadata);
    } else if (nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
               !json.is_object()) {
      r.Fail(SetVerdict::kIncomplete,
             std::string(kStepMetadata) + " is not whole JSON (its writer died while writing it?)",
             kStepMetadata);
    } else {
      r.members.push_back(kStepMetadata);
    }
  }
  if (LooksLikePyTree(names)) CheckPyTree(dir, "", names, &r);
  for (const std::string& sub : dir.Subdirs()) {
    if (sub == "d" || ProcessOf(sub) >= 0 || sub == "array_metadatas") continue;
    const std::vector<std::string> inside = dir.List(sub);
    if (!LooksLikePyTree(inside)) continue;
    CheckPyTree(dir, sub + "/", inside, &r);
  }
  // A step of JSON items only (metadata/data.json) has nothing more to check.
  return r;
}

}  // namespace ckptwatch
