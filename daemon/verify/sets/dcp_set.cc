#include "verify/sets/dcp_set.h"

#include <algorithm>
#include <map>

#include "verify/byte_reader.h"
#include "verify/sets/set_names.h"
#include "verify/torch/pickle_reader.h"

namespace ckptwatch {
namespace {

// A `.metadata` of a large model lists every chunk of every tensor; 256 MiB is far past any.
constexpr std::uint64_t kMaxMetadataBytes = 256u << 20;

// A relative_path the set may hold: one name, no directory, nothing that leaves the set, and
// one a file can have (NAME_MAX, no NUL).
bool IsStorageFileName(const std::string& name) {
  return IsOneComponent(name) && name.size() < 256 && name.find('\0') == std::string::npos;
}

// Whether the file ends with a zip end-of-central-directory record (no comment): what a whole
// torch.save archive ends with, and what a truncated one has lost.
bool EndsLikeZip(int fd, std::uint64_t size) {
  if (size < 22) return false;
  std::uint8_t tail[22];
  std::string err;
  ReadAt read_at = FdReadAt(fd);
  return ByteReader(read_at, size).Read(size - 22, tail, 22, &err) && LoadLe(tail, 4) == 0x06054b50;
}

struct Range {
  std::string fqn;
  std::uint64_t offset = 0, length = 0;
};

}  // namespace

bool LooksLikeDcp(const std::vector<std::string>& names) {
  for (const std::string& n : names)
    if (n == ".metadata" || n.ends_with(".distcp")) return true;
  return false;
}

SetReport CheckDcp(const SetDir& dir, const std::vector<std::string>& names,
                   const SetCheckOptions&) {
  SetReport r;
  r.layout = "dcp";
  r.path = dir.path();
  r.dir = dir.path();
  OpenedEntry meta = dir.Open(".metadata");
  if (meta.kind != EntryKind::kRegular && meta.kind != EntryKind::kMissing) {
    ReportUnopened(meta, ".metadata", "", &r);
    return r;
  }
  if (meta.kind != EntryKind::kRegular) {
    for (const std::string& n : names)
      if (n.ends_with(".distcp")) r.members.push_back(n);
    r.Missing(".metadata",
              ".metadata is missing: the commit point the coordinator writes after every rank's "
              ".distcp files "
              "(a save that stopped before it, or .metadata.tmp never renamed)");
    return r;
  }
  r.members.push_back(".metadata");
  const auto meta_size = static_cast<std::uint64_t>(meta.st.st_size);
  if (meta_size > kMaxMetadataBytes) {
    r.Fail(SetVerdict::kInconsistent,
           ".metadata holds " + std::to_string(meta_size) + " bytes, more than the verifier reads",
           ".metadata");
    return r;
  }
  ReadAt read_at = FdReadAt(meta.fd.get());
  PickleSummary pickle = ReadPickle(read_at, 0, meta_size, {}, {"MetadataIndex", "_StorageInfo"});
  if (pickle.status != PickleSummary::Status::kOk) {
    r.Fail(pickle.status == PickleSummary::Status::kTruncated ? SetVerdict::kIncomplete
                                                              : SetVerdict::kInconsistent,
           ".metadata " + pickle.error, ".metadata");
    return r;
  }
  // storage_data's items come as key, value: a MetadataIndex (the tensor) then its _StorageInfo.
  std::map<std::string, std::vector<Range>> by_file;
  std::string fqn;
  std::size_t infos = 0;
  for (const PickleRecord& rec : pickle.records) {
    auto str = [&](const char* key) -> const std::string* {
      for (const auto& [k, v] : rec.strings)
        if (k == key) return &v;
      return nullptr;
    };
    auto num = [&](const char* key) -> std::optional<std::uint64_t> {
      for (const auto& [k, v] : rec.ints)
        if (k == key) return v;
      return std::nullopt;
    };
    if (rec.cls.ends_with("MetadataIndex")) {
      const std::string* f = str("fqn");
      fqn = f ? *f : "?";
      continue;
    }
    ++infos;
    const std::string* path = str("relative_path");
    auto offset = num("offset"), length = num("length");
    if (!path || !offset || !length) {
      r.Fail(SetVerdict::kInconsistent,
             ".metadata: a storage entry of " + fqn + " has no relative_path, offset or length",
             ".metadata");
      return r;
    }
    if (!IsStorageFileName(*path)) {
      r.Fail(SetVerdict::kInconsistent,
             ".metadata: " + fqn + " is stored in a file outside the checkpoint directory",
             ".metadata");
      return r;
    }
    if (*offset > UINT64_MAX - *length) {
      r.Fail(SetVerdict::kInconsistent, ".metadata: " + fqn + " ends past 2^64", ".metadata");
      return r;
    }
    by_file[*path].push_back({fqn, *offset, *length});
  }
  if (infos == 0 && pickle.records.empty()) {
    r.Fail(SetVerdict::kInconsistent, ".metadata names no storage (not a DCP Metadata pickle)",
           ".metadata");
    return r;
  }
  for (const auto& [file, ranges] : by_file) {
    OpenedEntry f = dir.Open(file);
    if (f.kind != EntryKind::kRegular) {
      ReportUnopened(f, file,
                     file + " is missing; .metadata stores " + ranges.front().fqn + " in it", &r);
      continue;
    }
    r.members.push_back(file);
    const auto size = static_cast<std::uint64_t>(f.st.st_size);
    const Range* past = nullptr;
    for (const Range& range : ranges)
      if (range.offset + range.length > size &&
          (!past || range.offset + range.length > past->offset + past->length))
        past = &range;
    if (!past) continue;
    const std::string where = "holds " + std::to_string(size) + " bytes; .metadata places " +
                              past->fqn + " at bytes " + std::to_string(past->offset) + "-" +
                              std::to_string(past->offset + past->length);
    if (EndsLikeZip(f.fd.get(), size))
      r.Fail(SetVerdict::kInconsistent,
             file + " " + where +
                 ", past the end of a whole archive: the metadata is from another save",
             file);
    else
      r.Fail(SetVerdict::kIncomplete, file + " is truncated: it " + where, file);
  }
  return r;
}

}  // namespace ckptwatch
