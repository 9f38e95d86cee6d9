#include "verify/sets/hf_sharded_set.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "verify/byte_reader.h"
#include "verify/safetensors/safetensors.h"
#include "verify/sets/set_names.h"

namespace ckptwatch {
namespace {

// An index of a 400B-parameter model is a few MiB; the cap is for hostile files.
constexpr std::size_t kMaxHfIndexBytes = 64u << 20;

struct ShardHeader {
  std::set<std::string> tensors;
  std::uint64_t end = 0;  // 8 + header length + the last tensor's end
};

// The tensor names and the expected length of a safetensors shard, from its header alone.
bool ReadShardHeader(int fd, std::uint64_t size, ShardHeader* out, std::string* err) {
  ReadAt read_at = FdReadAt(fd);
  ByteReader file(read_at, size);
  std::uint8_t len8[8];
  if (!file.Read(0, len8, 8, err)) return false;
  const std::uint64_t n = LoadLe(len8, 8);
  if (n > kMaxSafetensorsHeader || n > size - 8) {
    *err = "its header length " + std::to_string(n) + " runs past the file (" +
           std::to_string(size) + " bytes)";
    return false;
  }
  std::vector<std::uint8_t> text;
  if (!file.ReadVector(8, static_cast<std::size_t>(n), &text, err)) return false;
  nlohmann::json header = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!header.is_object()) return (*err = "its header is not a JSON object", false);
  std::uint64_t data_end = 0;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    out->tensors.insert(name);
    if (!info.is_object() || !info.contains("data_offsets") || !info["data_offsets"].is_array() ||
        info["data_offsets"].size() != 2 || !info["data_offsets"][1].is_number_unsigned())
      return (*err = "its header entry of " + name.substr(0, 200) + " has no data_offsets", false);
    data_end = std::max<std::uint64_t>(data_end, info["data_offsets"][1].get<std::uint64_t>());
  }
  if (data_end > UINT64_MAX - 8 - n) return (*err = "its tensors end past 2^64", false);
  out->end = 8 + n + data_end;
  return true;
}

}  // namespace

bool IsHfIndexName(const std::string& name) {
  return HasStemAndSuffix(name, ".safetensors.index.json") || HasStemAndSuffix(name, ".bin.index.json");
}

void CheckHfSharded(const SetDir& dir, const std::string& index, const SetCheckOptions& options,
                    SetReport* r) {
  const std::string at =
      index.find('/') == std::string::npos ? "" : index.substr(0, index.rfind('/') + 1);
  std::string text, err;
  if (!dir.ReadSmall(index, kMaxHfIndexBytes, &text, &err)) {
    r->Fail(SetVerdict::kIncomplete, err, index);
    return;
  }
  r->members.push_back(index);
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object()) {
    r->Fail(SetVerdict::kInconsistent, index + " is not an index: no JSON object with a weight_map",
            index);
    return;
  }
  std::map<std::string, std::vector<std::string>>
      by_shard;  // shard -> tensors the index puts there
  for (const auto& [tensor, shard] : json["weight_map"].items()) {
    if (!shard.is_string()) {
      r->Fail(SetVerdict::kInconsistent,
              index + ": weight_map[" + tensor.substr(0, 200) + "] is not a file name", index);
      return;
    }
    by_shard[shard.get<std::string>()].push_back(tensor);
  }
  std::string total;
  if (json.contains("metadata") && json["metadata"].is_object() &&
      json["metadata"].contains("total_size") &&
      json["metadata"]["total_size"].is_number_unsigned())
    total = ", " + std::to_string(json["metadata"]["total_size"].get<std::uint64_t>()) +
            " bytes in all";
  std::size_t missing = 0;
  for (const auto& [shard, tensors] : by_shard) {
    if (!IsOneComponent(shard)) {
      r->Fail(SetVerdict::kInconsistent,
              index + " names a shard outside its directory: " + shard.substr(0, 200), index);
      return;
    }
    OpenedEntry f = dir.Open(at + shard);
    if (f.kind != EntryKind::kRegular) {
      if (f.kind == EntryKind::kMissing) ++missing;
      ReportUnopened(f, at + shard, "", r);
      continue;
    }
    r->members.push_back(at + shard);
    const auto size = static_cast<std::uint64_t>(f.st.st_size);
    if (HasStemAndSuffix(shard, ".safetensors")) {
      ShardHeader header;
      if (!ReadShardHeader(f.fd.get(), size, &header, &err)) {
        r->Fail(size < 8 ? SetVerdict::kIncomplete : SetVerdict::kInconsistent, shard + ": " + err,
                at + shard);
        continue;
      }
      if (size < header.end) {
        r->Fail(SetVerdict::kIncomplete,
                shard + " is truncated: " + std::to_string(size) + " bytes, its header needs " +
                    std::to_string(header.end),
                at + shard);
        continue;
      }
      for (const std::string& tensor : tensors)
        if (!header.tensors.count(tensor)) {
          r->Fail(SetVerdict::kInconsistent,
                  index + " places " + tensor.substr(0, 200) + " in " + shard +
                      ", which does not hold it",
                  at + shard);
          break;
        }
    }
    if (options.verify_member && r->ok())
      ApplyMemberCheck(options.verify_member(f.fd.get(), dir.Join(at + shard)), at + shard, r);
  }
  if (missing && r->reason.empty()) {
    r->reason = std::to_string(missing) + " of the " + std::to_string(by_shard.size()) +
                " shards " + index + " names " + (missing == 1 ? "is" : "are") + " missing (" +
                r->missing.front() + (missing > 1 ? ", ..." : "") + ")" + total;
  }
}

std::vector<SetReport> FindHfSharded(const SetDir& dir, const std::vector<std::string>& names,
                                     const SetCheckOptions& options) {
  std::vector<SetReport> out;
  for (const std::string& name : names) {
    if (!IsHfIndexName(name)) continue;
    SetReport r;
    r.layout = "hf_sharded";
    r.path = dir.Join(name);
    r.dir = dir.path();
    CheckHfSharded(dir, name, options, &r);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ckptwatch
