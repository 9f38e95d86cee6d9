#include "verify/sets/tf_bundle.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "verify/byte_reader.h"
#include "verify/sets/crc32c.h"
#include "verify/sets/set_names.h"
#include "verify/sets/tf_table.h"

namespace ckptwatch {
namespace {

struct BundleEntry {
  std::uint64_t dtype = 0, shard = 0, offset = 0, size = 0;
  std::uint32_t crc = 0;
  bool has_crc = false, sliced = false, unknown_rank = false;
  std::vector<std::uint64_t> dims;
};

// Bytes per element of a tensorflow DataType (types.proto); 0 for variable-width types
// (DT_STRING, DT_RESOURCE, DT_VARIANT) and unknown ones, whose size is not checked.
std::uint64_t DtypeBytes(std::uint64_t dtype) {
  switch (dtype) {
    case 4:
    case 6:
    case 10:
    case 11:
    case 12:
      return 1;
    case 5:
    case 14:
    case 15:
    case 16:
    case 17:
    case 19:
      return 2;
    case 1:
    case 3:
    case 13:
    case 22:
      return 4;
    case 2:
    case 8:
    case 9:
    case 23:
      return 8;
    case 18:
      return 16;
    default:
      return 0;
  }
}

// Protobuf fields of one message: calls `field(number, wire_type, varint, bytes)`.
template <typename F>
bool ForEachField(const std::string& msg, F field) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(msg.data());
  std::size_t pos = 0;
  while (pos < msg.size()) {
    std::uint64_t tag, v = 0;
    if (!ReadVarint(p, msg.size(), &pos, &tag)) return false;
    std::string bytes;
    switch (tag & 7) {
      case 0:
        if (!ReadVarint(p, msg.size(), &pos, &v)) return false;
        break;
      case 1:
        if (msg.size() - pos < 8) return false;
        v = LoadLe(p + pos, 8);
        pos += 8;
        break;
      case 5:
        if (msg.size() - pos < 4) return false;
        v = LoadLe(p + pos, 4);
        pos += 4;
        break;
      case 2:
        if (!ReadVarint(p, msg.size(), &pos, &v) || v > msg.size() - pos) return false;
        bytes.assign(msg, pos, static_cast<std::size_t>(v));
        pos += static_cast<std::size_t>(v);
        break;
      default:
        return false;
    }
    field(tag >> 3, tag & 7, v, bytes);
  }
  return true;
}

bool ParseEntry(const std::string& value, BundleEntry* e) {
  bool ok = true;
  const bool parsed = ForEachField(
      value, [&](std::uint64_t n, std::uint64_t, std::uint64_t v, const std::string& b) {
        if (n == 1)
          e->dtype = v;
        else if (n == 3)
          e->shard = v;
        else if (n == 4)
          e->offset = v;
        else if (n == 5)
          e->size = v;
        else if (n == 6)
          e->crc = static_cast<std::uint32_t>(v), e->has_crc = true;
        else if (n == 7)
          e->sliced = true;
        else if (n == 2) {  // TensorShapeProto: dim = 2 {size = 1}, unknown_rank = 3
          ok = ok && ForEachField(b, [&](std::uint64_t sn, std::uint64_t, std::uint64_t sv,
                                         const std::string& sb) {
                 if (sn == 3 && sv) e->unknown_rank = true;
                 if (sn != 2) return;
                 std::uint64_t dim = 0;
                 ok = ok && ForEachField(sb, [&](std::uint64_t dn, std::uint64_t, std::uint64_t dv,
                                                 const std::string&) {
                        if (dn == 1) dim = dv;
                      });
                 if (e->dims.size() < 64) e->dims.push_back(dim);
               });
        }
      });
  return parsed && ok;
}

// Expected bytes of a fixed-width tensor; false when not computable (variable width, overflow).
bool ExpectedBytes(const BundleEntry& e, std::uint64_t* bytes) {
  std::uint64_t n = DtypeBytes(e.dtype);
  if (n == 0 || e.unknown_rank) return false;
  for (std::uint64_t d : e.dims) {
    if (d != 0 && n > UINT64_MAX / d) return false;
    n *= d;
  }
  *bytes = n;
  return true;
}

// Extends `*crc` over bytes [from, to) of the file.
bool ExtendOverRange(const ByteReader& file, std::uint64_t from, std::uint64_t to,
                     std::uint32_t* crc, std::string* err) {
  std::vector<std::uint8_t> buf(
      static_cast<std::size_t>(std::min<std::uint64_t>(to - from, 1u << 20)));
  for (std::uint64_t at = from; at < to;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - at));
    if (!file.Read(at, buf.data(), n, err)) return false;
    *crc = Crc32cExtend(*crc, buf.data(), n);
    at += n;
  }
  return true;
}

// The CRC-32C BundleWriter records. Fixed-width tensors: over their bytes. DT_STRING
// (tensor_bundle.cc WriteStringTensor): the file holds a varint length per element, the masked
// CRC of those lengths (fixed32), then the bytes; the CRC runs over each length as a uint32
// (a uint64 past 2^32, "for backwards compatibility"), the fixed32, then the bytes.
// Unknown-width types (resource, variant) return true: not checked.
bool CrcMatches(int fd, const BundleEntry& e, std::string* err) {
  ReadAt read_at = FdReadAt(fd);
  ByteReader file(read_at, e.offset + e.size);
  std::uint32_t crc = 0;
  if (e.dtype != 7) {
    if (DtypeBytes(e.dtype) == 0) return true;
    return ExtendOverRange(file, e.offset, e.offset + e.size, &crc, err) &&
           Crc32cMask(crc) == e.crc;
  }
  std::uint64_t elements = 1;
  for (std::uint64_t d : e.dims)
    elements = d != 0 && elements > e.size / d ? e.size + 1 : elements * d;
  if (elements > e.size || elements > (16u << 20))
    return true;  // not a string tensor we can bound: unchecked
  std::vector<std::uint8_t> head;
  const std::size_t head_bytes =
      static_cast<std::size_t>(std::min<std::uint64_t>(e.size, elements * 10 + 4));
  if (!file.ReadVector(e.offset, head_bytes, &head, err)) return false;
  std::size_t pos = 0;
  for (std::uint64_t i = 0; i < elements; ++i) {
    std::uint64_t len;
    if (!ReadVarint(head.data(), head.size(), &pos, &len)) return false;
    if (len <= UINT32_MAX) {
      const std::uint8_t le[4] = {
          static_cast<std::uint8_t>(len), static_cast<std::uint8_t>(len >> 8),
          static_cast<std::uint8_t>(len >> 16), static_cast<std::uint8_t>(len >> 24)};
      crc = Crc32cExtend(crc, le, 4);
    } else {
      std::uint8_t le[8];
      for (int b = 0; b < 8; ++b) le[b] = static_cast<std::uint8_t>(len >> (8 * b));
      crc = Crc32cExtend(crc, le, 8);
    }
  }
  if (head.size() - pos < 4) return false;
  crc = Crc32cExtend(crc, head.data() + pos, 4);
  return ExtendOverRange(file, e.offset + pos + 4, e.offset + e.size, &crc, err) &&
         Crc32cMask(crc) == e.crc;
}

std::string EntryName(const std::string& key) {
  return key.size() > 200 ? key.substr(0, 200) + "..." : key;
}

}  // namespace

std::string TfShardName(const std::string& prefix, std::uint64_t i, std::uint64_t n) {
  char tail[64];
  std::snprintf(tail, sizeof tail, ".data-%05llu-of-%05llu", static_cast<unsigned long long>(i),
                static_cast<unsigned long long>(n));
  return prefix + tail;
}

void CheckTfBundle(const SetDir& dir, const std::string& prefix, const SetCheckOptions& options,
                   SetReport* report) {
  const std::string index_name = prefix + ".index";
  OpenedEntry index = dir.Open(index_name);
  if (index.kind != EntryKind::kRegular) {
    ReportUnopened(index, index_name,
                   index_name +
                       " is missing: the bundle's commit point (written after every data shard) "
                       "was never written",
                   report);
    return;
  }
  report->members.push_back(index_name);
  std::vector<TableEntry> table;
  std::string err;
  ReadAt read_at = FdReadAt(index.fd.get());
  if (!ReadTable(read_at, static_cast<std::uint64_t>(index.st.st_size), &table, &err)) {
    const bool short_file =
        err.find("past the end") != std::string::npos || err.find("shorter") != std::string::npos;
    report->Fail(short_file ? SetVerdict::kIncomplete : SetVerdict::kInconsistent,
                 index_name + ": " + err, index_name);
    return;
  }
  std::uint64_t num_shards = 0;
  std::map<std::string, BundleEntry> entries;
  for (const TableEntry& t : table) {
    if (t.key.empty()) {
      if (!ForEachField(t.value,
                        [&](std::uint64_t n, std::uint64_t, std::uint64_t v, const std::string&) {
                          if (n == 1) num_shards = v;
                        }))
        return report->Fail(SetVerdict::kInconsistent,
                            index_name + ": its header (BundleHeaderProto) is malformed",
                            index_name);
      continue;
    }
    BundleEntry e;
    if (!ParseEntry(t.value, &e))
      return report->Fail(SetVerdict::kInconsistent,
                          index_name + ": the entry of " + EntryName(t.key) + " is malformed",
                          index_name);
    entries.emplace(t.key, e);
  }
  if (num_shards == 0 || num_shards > 100000)
    return report->Fail(
        SetVerdict::kInconsistent,
        index_name + ": its header names " + std::to_string(num_shards) + " data shards",
        index_name);

  // Sizes only: a header may count up to 100,000 shards, and their descriptors are not all held
  // at once (at `full` each shard is opened again, once, for its checksums).
  struct Shard {
    std::string name;
    std::uint64_t size = 0, end = 0;
    bool present = false;
  };
  std::vector<Shard> shards(static_cast<std::size_t>(num_shards));
  for (std::uint64_t i = 0; i < num_shards; ++i) {
    Shard& s = shards[i];
    s.name = TfShardName(prefix, i, num_shards);
    OpenedEntry f = dir.Open(s.name);
    if (f.kind != EntryKind::kRegular) {
      ReportUnopened(f, s.name,
                     s.name + " is missing; " + index_name + " names it (shard " +
                         std::to_string(i) + " of " + std::to_string(num_shards) + ")",
                     report);
      continue;
    }
    s.present = true;
    s.size = static_cast<std::uint64_t>(f.st.st_size);
    report->members.push_back(s.name);
  }
  for (const auto& [key, e] : entries) {
    if (e.sliced && e.size == 0)
      continue;  // a partitioned variable's full-shape entry: no bytes of its own
    if (e.shard >= num_shards)
      return report->Fail(SetVerdict::kInconsistent,
                          index_name + ": " + EntryName(key) + " is in shard " +
                              std::to_string(e.shard) + " of " + std::to_string(num_shards),
                          index_name);
    std::uint64_t expected;
    if (ExpectedBytes(e, &expected) && expected != e.size)
      return report->Fail(SetVerdict::kInconsistent,
                          index_name + ": " + EntryName(key) + " holds " + std::to_string(e.size) +
                              " bytes, its dtype and shape need " + std::to_string(expected),
                          index_name);
    Shard& s = shards[e.shard];
    if (e.offset > UINT64_MAX - e.size)
      return report->Fail(SetVerdict::kInconsistent,
                          index_name + ": " + EntryName(key) + " ends past 2^64", index_name);
    s.end = std::max(s.end, e.offset + e.size);
  }
  for (const Shard& s : shards) {
    if (!s.present) continue;
    if (s.size < s.end)
      report->Fail(SetVerdict::kIncomplete,
                   s.name + " is truncated: " + std::to_string(s.size) + " bytes, " + index_name +
                       " places tensors up to byte " + std::to_string(s.end),
                   s.name);
    else if (s.size > s.end)
      report->Fail(SetVerdict::kInconsistent,
                   s.name + " holds " + std::to_string(s.size) + " bytes but " + index_name +
                       " accounts for " + std::to_string(s.end) +
                       ": the index and data are from different saves",
                   s.name);
  }
  if (options.level != Level::kFull || !report->ok()) return;
  std::vector<std::vector<const std::pair<const std::string, BundleEntry>*>> by_shard(
      shards.size());
  for (const auto& entry : entries)
    if (entry.second.has_crc && entry.second.size > 0)
      by_shard[entry.second.shard].push_back(&entry);
  for (std::size_t i = 0; i < shards.size(); ++i) {
    if (by_shard[i].empty()) continue;
    OpenedEntry f = dir.Open(shards[i].name);
    if (f.kind != EntryKind::kRegular) {
      report->Fail(SetVerdict::kIncomplete, shards[i].name + " went away while it was read",
                   shards[i].name);
      return;
    }
    for (const auto* entry : by_shard[i]) {
      std::string read_err;
      if (!CrcMatches(f.fd.get(), entry->second, &read_err)) {
        report->Fail(SetVerdict::kInconsistent,
                     shards[i].name + ": " +
                         (read_err.empty() ? "the bytes of " + EntryName(entry->first) +
                                                 " fail the CRC-32C " + index_name + " records"
                                           : read_err),
                     shards[i].name);
        return;
      }
    }
  }
}

std::vector<SetReport> FindTfBundles(const SetDir& dir, const std::string& sub,
                                     const std::vector<std::string>& names,
                                     const SetCheckOptions& options) {
  const std::string at = sub.empty() ? "" : sub + "/";
  std::vector<std::string> prefixes;
  for (const std::string& name : names) {
    if (HasStemAndSuffix(name, ".index")) {
      OpenedEntry f = dir.Open(at + name);
      if (f.kind != EntryKind::kRegular) continue;
      ReadAt read_at = FdReadAt(f.fd.get());
      if (HasTableMagic(read_at, static_cast<std::uint64_t>(f.st.st_size)))
        prefixes.push_back(name.substr(0, name.size() - 6));
    } else if (auto d = name.rfind(".data-"); d != std::string::npos && name.size() == d + 20 &&
                                              name.compare(d + 11, 4, "-of-") == 0) {
      // A shard without an index: a save that stopped before its commit point.
      const std::string prefix = name.substr(0, d);
      if (!Listed(names, prefix + ".index")) prefixes.push_back(prefix);
    }
  }
  std::sort(prefixes.begin(), prefixes.end());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  std::vector<SetReport> out;
  for (const std::string& prefix : prefixes) {
    SetReport r;
    r.layout = "tf_bundle";
    r.path = dir.Join(at + prefix);
    r.dir = dir.path();
    CheckTfBundle(dir, at + prefix, options, &r);
    if (!Listed(names, prefix + ".index"))
      for (const std::string& name : names)
        if (name.rfind(prefix + ".data-", 0) == 0) r.members.push_back(at + name);
    if (Listed(names, prefix + ".meta"))
      r.members.push_back(at + prefix + ".meta");
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ckptwatch
