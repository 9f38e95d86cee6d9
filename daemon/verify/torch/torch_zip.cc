// torch.save's zip format: `<prefix>/data.pkl`, `<prefix>/data/<key>` per storage, `version`,
// optionally `byteorder` and `.data/`; TorchScript adds `code/`, `constants.pkl` and more pickles,
// each `X.pkl` keeping its storages in `X/`.
#include <cstring>
#include <map>
#include <set>

#include "verify/torch/pickle_reader.h"
#include "verify/torch/torch_checkpoint.h"
#include "verify/torch/torch_storage.h"
#include "verify/zip/zip_directory.h"

namespace ckptwatch {
namespace {

// A deflated pickle is inflated into memory up to this; torch writes them stored.
constexpr std::uint64_t kMaxInflatedPickle = 256u << 20;

// "archive/" for "archive/data.pkl": torch puts every record under one directory.
bool FindPrefix(const ZipDirectory& dir, std::string* prefix) {
  for (const ZipEntry& e : dir.entries) {
    if (!e.name.ends_with("data.pkl")) continue;
    const std::string p = e.name.substr(0, e.name.size() - 8);
    if (p.empty() || (p.back() == '/' && p.find('/') == p.size() - 1)) {
      *prefix = p;
      return true;
    }
  }
  return false;
}

// Reads a pickle entry: straight from the file when stored, from memory when deflated.
PickleSummary ReadPickleEntry(const ReadAt& read_at, std::uint64_t file_size, const ZipEntry& e,
                              std::uint64_t data_offset, std::string* err) {
  if (e.method == 0) return ReadPickle(read_at, data_offset, data_offset + e.size);
  PickleSummary failed;
  if (e.size > kMaxInflatedPickle) {
    failed.status = PickleSummary::Status::kTooLarge;
    failed.error = "is compressed and larger than the verifier inflates";
    return failed;
  }
  std::vector<std::uint8_t> bytes;
  if (!StreamZipEntry(read_at, file_size, e, data_offset,
                      [&](const std::uint8_t* p, std::size_t n) {
                        if (bytes.size() + n > e.size) return false;
                        bytes.insert(bytes.end(), p, p + n);
                        return true;
                      },
                      err)) {
    failed.error = *err;
    return failed;
  }
  ReadAt memory = [&bytes](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (offset >= bytes.size()) return 0;
    const std::size_t k = std::min<std::size_t>(n, bytes.size() - static_cast<std::size_t>(offset));
    std::memcpy(buf, bytes.data() + offset, k);
    return static_cast<long>(k);
  };
  return ReadPickle(memory, 0, bytes.size());
}

// The archive format versions torch.load reads: caffe2/serialize/versions.h's
// kMinSupportedFileFormatVersion and kMaxSupportedFileFormatVersion (1 and 10 from torch 1.11
// through 2.x; torch.save writes 3, torch.jit.save up to 10 for operators that changed meaning).
constexpr std::uint64_t kMinTorchVersion = 1;
constexpr std::uint64_t kMaxTorchVersion = 10;
// More leading whitespace than this in a version record is not read: no writer puts any there.
constexpr std::uint64_t kMaxVersionRecordBytes = 64u << 10;

// What std::stoull, which torch's PyTorchStreamReader parses the record with, makes of it:
// whitespace, an optional sign, decimal digits, anything after them ignored.
class VersionRecordParser {
 public:
  enum class State { kSpace, kSign, kDigits, kDone, kNoNumber };
  // Takes bytes until the number is known; false once it is (or cannot be).
  bool Feed(const std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i < n && state_ != State::kDone && state_ != State::kNoNumber;
         ++i, ++fed_) {
      if (fed_ == kMaxVersionRecordBytes && state_ != State::kDigits) {
        state_ = State::kNoNumber;
        break;
      }
      const std::uint8_t c = p[i];
      const bool digit = c >= '0' && c <= '9';
      if (state_ == State::kSpace && (c == ' ' || (c >= '\t' && c <= '\r'))) continue;
      if (state_ == State::kSpace && (c == '+' || c == '-')) {
        negative_ = c == '-';
        state_ = State::kSign;
      } else if (digit) {
        state_ = State::kDigits;
        overflow_ = overflow_ || value_ > (UINT64_MAX - (c - '0')) / 10;
        value_ = value_ * 10 + (c - '0');
      } else {
        state_ = state_ == State::kDigits ? State::kDone : State::kNoNumber;
      }
    }
    return state_ != State::kDone && state_ != State::kNoNumber;
  }
  // Whether torch.load accepts the record; `*why` says what it refuses otherwise.
  bool Accepts(const std::string& name, std::string* why) const {
    const std::string record = "torch archive's version record " + name;
    if (state_ != State::kDigits && state_ != State::kDone) {
      *why = record +
             (fed_ >= kMaxVersionRecordBytes ? " holds no number in its first 64 KiB"
                                             : " holds no number") +
             ": torch.load fails (\"Couldn't parse the version\")";
      return false;
    }
    if (overflow_) {
      *why = record + " holds a number too large to parse: torch.load fails (stoull)";
      return false;
    }
    if (negative_ && value_ != 0) {
      *why = record + " holds a negative number: torch.load reads versions " + Range() + " only";
      return false;
    }
    const std::uint64_t v = negative_ ? 0 : value_;
    if (v >= kMinTorchVersion && v <= kMaxTorchVersion) return true;
    *why = record + " says " + std::to_string(v) + ", but torch.load reads versions " + Range() +
           " (\"the " + (v < kMinTorchVersion ? "minimum" : "maximum") +
           " supported version for reading is " +
           std::to_string(v < kMinTorchVersion ? kMinTorchVersion : kMaxTorchVersion) +
           "\"): no torch release loads it";
    return false;
  }

 private:
  static std::string Range() {
    return std::to_string(kMinTorchVersion) + " to " + std::to_string(kMaxTorchVersion);
  }
  State state_ = State::kSpace;
  std::uint64_t value_ = 0, fed_ = 0;
  bool negative_ = false, overflow_ = false;
};

// Reads the version record as torch.load does; false with `*why` when torch.load refuses it.
bool CheckVersionRecord(const ReadAt& read_at, std::uint64_t file_size, const ZipEntry& e,
                        std::string* why) {
  std::string err;
  std::uint64_t data_offset = 0;
  VersionRecordParser parser;
  if (!ZipEntryDataOffset(read_at, file_size, e, &data_offset, &err) ||
      !StreamZipEntry(
          read_at, file_size, e, data_offset,
          [&](const std::uint8_t* p, std::size_t n) { return parser.Feed(p, n); }, &err)) {
    *why = "torch archive's version record cannot be read: " + err + ": torch.load will fail";
    return false;
  }
  return parser.Accepts(e.name, why);
}

}  // namespace

TorchCheck CheckTorchZip(const ReadAt& read_at, std::uint64_t file_size, Level level) {
  TorchCheck check;
  auto fail = [&](Verdict verdict, std::string reason) {
    check.verdict = verdict;
    check.reason = std::move(reason);
    return std::move(check);
  };
  // torch.load takes a file for a zip archive only when it begins with a local header
  // (serialization.py _is_zipfile reads the first 4 bytes); anything else it unpickles as a
  // legacy file and fails, whatever a central directory at the end says (found by torch_fuzz).
  std::uint8_t magic[4] = {};
  if (file_size < sizeof magic || read_at(0, magic, sizeof magic) != static_cast<long>(sizeof magic) ||
      std::memcmp(magic, "PK\x03\x04", sizeof magic) != 0)
    return fail(Verdict::kCorrupt,
                "does not begin with a zip local header (PK\\3\\4): torch.load reads it as a legacy "
                "pickle and fails");
  ZipDirectory dir = ReadZipDirectory(read_at, file_size);
  if (dir.verdict != Verdict::kOk) return fail(dir.verdict, dir.reason);
  std::string prefix;
  if (!FindPrefix(dir, &prefix))
    return fail(Verdict::kCorrupt, "zip archive has no data.pkl: not a torch.save archive, torch.load will fail");
  // torch reads .data/version when the archive has it, else version.
  long version = dir.Find(prefix + ".data/version");
  if (version < 0) version = dir.Find(prefix + "version");
  if (version < 0)
    return fail(Verdict::kCorrupt, "torch archive has no " + prefix +
                                       "version record: torch.load fails (\"failed finding file version\")");
  if (std::string why;
      !CheckVersionRecord(read_at, file_size, dir.entries[static_cast<std::size_t>(version)], &why))
    return fail(Verdict::kCorrupt, why);
  if (level == Level::kHeader) return check.verdict = Verdict::kOk, std::move(check);

  std::string err;
  std::vector<std::uint64_t> data_offsets(dir.entries.size());
  for (std::size_t i = 0; i < dir.entries.size(); ++i) {
    const ZipEntry& e = dir.entries[i];
    if (!ZipEntryDataOffset(read_at, file_size, e, &data_offsets[i], &err))
      return fail(Verdict::kCorrupt, "zip archive is inconsistent: " + err);
    if (data_offsets[i] + e.compressed_size > dir.directory_offset)
      return fail(Verdict::kCorrupt, "zip entry " + e.name + "'s data runs into the central directory");
  }

  // data.pkl and constants.pkl name storages in data/ and constants/: all there, sized as
  // declared, none extra.
  std::map<std::size_t, StorageScanner> scanners;  // entry index -> weight storage to scan
  bool big_endian = false;
  if (long bo = dir.Find(prefix + "byteorder"); bo >= 0) {
    std::string order;
    const ZipEntry& e = dir.entries[static_cast<std::size_t>(bo)];
    if (e.size <= 16 && StreamZipEntry(read_at, file_size, e, data_offsets[static_cast<std::size_t>(bo)],
                                       [&](const std::uint8_t* p, std::size_t n) {
                                         order.append(reinterpret_cast<const char*>(p), n);
                                         return true;
                                       },
                                       &err))
      big_endian = order == "big";
  }
  std::set<std::string> referenced;
  for (std::size_t i = 0; i < dir.entries.size(); ++i) {
    const ZipEntry& e = dir.entries[i];
    if (e.name.size() <= prefix.size() + 4 || e.name.compare(0, prefix.size(), prefix) != 0 || !e.name.ends_with(".pkl"))
      continue;
    const std::string stem = e.name.substr(prefix.size(), e.name.size() - prefix.size() - 4);
    // What torch.load and torch.jit.load read. TorchScript's other pickles (traced_inputs.pkl)
    // are read only on request, and writers leave their storages empty.
    if (stem != "data" && stem != "constants") continue;
    PickleSummary pickle = ReadPickleEntry(read_at, file_size, e, data_offsets[i], &err);
    if (pickle.status == PickleSummary::Status::kTooLarge) {
      check.note = e.name + " " + pickle.error + ": its storages were not cross-checked";
      continue;
    }
    if (pickle.status != PickleSummary::Status::kOk)
      return fail(Verdict::kCorrupt, e.name + " " + pickle.error + ": torch.load will fail");
    if (pickle.text_persistent_ids)
      return fail(Verdict::kCorrupt, e.name + TextPersistentIdsReason());
    const bool main = stem == "data";
    for (const PickleStorage& s : pickle.storages) {
      const std::string name = prefix + stem + "/" + s.key;
      const long at = dir.Find(name);
      if (at < 0)
        return fail(Verdict::kCorrupt, e.name + " names storage " + s.key + " but the archive has no " + name +
                                           ": torch.load will fail");
      referenced.insert(name);
      const std::size_t element = StorageElementSize(s.type);
      const ZipEntry& data = dir.entries[static_cast<std::size_t>(at)];
      if (element != 0 && (s.numel > UINT64_MAX / element || data.size != s.numel * element))
        return fail(Verdict::kCorrupt, name + " holds " + std::to_string(data.size) + " bytes but " + e.name +
                                           " declares " + std::to_string(s.numel) + " elements of " + s.type +
                                           ": torch.load will fail");
      if (main) check.parameters += s.numel;
      if (main && s.weight) scanners.emplace(static_cast<std::size_t>(at), StorageScanner(s.type));
    }
    if (main) check.tensors = pickle.tensors;
    check.foreign_globals.insert(check.foreign_globals.end(), pickle.foreign_globals.begin(),
                                 pickle.foreign_globals.end());
    for (const ZipEntry& other : dir.entries) {
      if (other.name.compare(0, prefix.size() + stem.size() + 1, prefix + stem + "/") == 0 &&
          !referenced.count(other.name))
        return fail(Verdict::kCorrupt, other.name + " is not referenced by " + e.name +
                                           ": the archive does not match its pickle");
    }
  }
  std::sort(check.foreign_globals.begin(), check.foreign_globals.end());
  check.foreign_globals.erase(std::unique(check.foreign_globals.begin(), check.foreign_globals.end()),
                              check.foreign_globals.end());
  if (level != Level::kFull) return check.verdict = Verdict::kOk, std::move(check);

  std::uint64_t nonfinite = 0;
  std::string first_bad;
  for (std::size_t i = 0; i < dir.entries.size(); ++i) {
    auto scanner = big_endian ? scanners.end() : scanners.find(i);
    auto sink = [&](const std::uint8_t* p, std::size_t n) {
      if (scanner != scanners.end()) scanner->second.Add(p, n);
      return true;
    };
    if (!StreamZipEntry(read_at, file_size, dir.entries[i], data_offsets[i], sink, &err))
      return fail(Verdict::kCorrupt, "zip " + err + ": torch.load will fail");
    if (scanner != scanners.end() && scanner->second.nonfinite() > 0) {
      if (first_bad.empty()) first_bad = dir.entries[i].name;
      nonfinite += scanner->second.nonfinite();
    }
  }
  check.nonfinite = nonfinite;
  if (big_endian && !scanners.empty()) check.note = "big-endian storages: NaN/Inf not counted";
  if (nonfinite)
    return fail(Verdict::kNonfinite, std::to_string(nonfinite) + " NaN/Inf value" + (nonfinite == 1 ? "" : "s") +
                                         " in model weights, the first in " + first_bad +
                                         ": training diverged before this save");
  check.verdict = Verdict::kOk;
  return check;
}

}  // namespace ckptwatch
