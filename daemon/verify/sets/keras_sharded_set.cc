#include "verify/sets/keras_sharded_set.h"

#include <nlohmann/json.hpp>
#include <set>

#include "verify/sets/set_names.h"

namespace ckptwatch {
namespace {

// An index names one group per layer: a few MiB for the largest models; the cap is for hostile
// files.
constexpr std::size_t kMaxKerasIndexBytes = 64u << 20;

}  // namespace

bool IsKerasShardedIndexName(const std::string& name) { return HasStemAndSuffix(name, ".weights.json"); }

void CheckKerasSharded(const SetDir& dir, const std::string& index, const SetCheckOptions& options,
                       SetReport* r) {
  std::string text, err;
  if (!dir.ReadSmall(index, kMaxKerasIndexBytes, &text, &err)) {
    r->Fail(SetVerdict::kIncomplete, err, index);
    return;
  }
  r->members.push_back(index);
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) {
    // close() writes the index last with a plain open(): cut short, it is a save that died.
    r->Fail(SetVerdict::kIncomplete, index + " is not whole JSON (its writer died while writing it?)",
            index);
    return;
  }
  if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object()) {
    r->Fail(SetVerdict::kInconsistent, index + " is not an index: no JSON object with a weight_map",
            index);
    return;
  }
  std::set<std::string> shards;
  for (const auto& [group, value] : json["weight_map"].items()) {
    std::vector<std::string> names;
    if (value.is_string()) {
      names.push_back(value.get<std::string>());
    } else if (value.is_array()) {
      for (const auto& v : value)
        if (v.is_string()) names.push_back(v.get<std::string>());
    }
    if (names.empty() || names.size() != (value.is_array() ? value.size() : 1u)) {
      r->Fail(SetVerdict::kInconsistent,
              index + ": weight_map[" + group.substr(0, 200) + "] is not a shard name or a list of them",
              index);
      return;
    }
    for (const std::string& name : names) {
      if (!IsOneComponent(name)) {
        r->Fail(SetVerdict::kInconsistent,
                index + " names a shard outside its directory: " + name.substr(0, 200), index);
        return;
      }
      shards.insert(name);
    }
  }
  if (shards.empty()) {
    r->Fail(SetVerdict::kInconsistent, index + " names no shard", index);
    return;
  }
  std::size_t missing = 0;
  for (const std::string& shard : shards) {
    OpenedEntry f = dir.Open(shard);
    if (f.kind != EntryKind::kRegular) {
      if (f.kind == EntryKind::kMissing) ++missing;
      ReportUnopened(f, shard, "", r);
      continue;
    }
    r->members.push_back(shard);
    if (options.verify_member && r->ok())
      ApplyMemberCheck(options.verify_member(f.fd.get(), dir.Join(shard)), shard, r);
  }
  if (missing && r->reason.empty())
    r->reason = std::to_string(missing) + " of the " + std::to_string(shards.size()) +
                " shards " + index + " names " + (missing == 1 ? "is" : "are") + " missing (" +
                r->missing.front() + (missing > 1 ? ", ..." : "") + ")";
}

std::vector<SetReport> FindKerasSharded(const SetDir& dir, const std::vector<std::string>& names,
                                        const SetCheckOptions& options) {
  std::vector<SetReport> out;
  for (const std::string& name : names) {
    if (!IsKerasShardedIndexName(name)) continue;
    SetReport r;
    r.layout = "keras_sharded";
    r.path = dir.Join(name);
    r.dir = dir.path();
    CheckKerasSharded(dir, name, options, &r);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ckptwatch
