// torch.save's legacy format: pickles of the magic number, the protocol version (1001) and the
// system info, the main pickle (storages as persistent ids), the list of storage keys; then per
// key an 8-byte little-endian element count and the storage's raw bytes.
#include <map>
#include <vector>

#include "verify/byte_reader.h"
#include "verify/torch/pickle_reader.h"
#include "verify/torch/torch_checkpoint.h"
#include "verify/torch/torch_storage.h"
#include "verify/verdict.h"

namespace ckptwatch {
namespace {

constexpr std::int64_t kProtocolVersion = 1001;

}  // namespace

TorchCheck CheckTorchLegacy(const ReadAt& read_at, std::uint64_t file_size, Level level) {
  TorchCheck check;
  auto fail = [&](Verdict verdict, std::string reason) {
    check.verdict = verdict;
    check.reason = std::move(reason);
    return check;
  };
  std::uint64_t at = 0;
  // What the pickle at `at` is, for messages; a pickle cut off by the end of the file is a save
  // cut short, anything else damage.
  auto read = [&](const char* what, PickleSummary* out) {
    *out = ReadPickle(read_at, at, file_size);
    if (out->status == PickleSummary::Status::kTruncated) {
      fail(Verdict::kTruncated, std::string("file ends at ") + std::to_string(file_size) + " bytes, inside its " +
                                    what + " pickle " + kCutShortHint + ": torch.load fails with EOFError");
      return false;
    }
    if (out->status == PickleSummary::Status::kTooLarge) {
      check.note = std::string("the ") + what + " pickle " + out->error + ": its storages were not cross-checked";
      return false;
    }
    if (out->status != PickleSummary::Status::kOk) {
      fail(Verdict::kCorrupt, std::string("the ") + what + " pickle " + out->error + ": torch.load will fail");
      return false;
    }
    at = out->end;
    return true;
  };
  PickleSummary magic, protocol, sys_info, main, keys;
  if (!read("magic number", &magic)) return check;
  if (!magic.root_is_torch_magic)
    return fail(Verdict::kCorrupt, "the first pickle is not torch's magic number: torch.load fails with \"Invalid magic number\"");
  if (!read("protocol version", &protocol)) return check;
  if (protocol.root_int != kProtocolVersion)
    return fail(Verdict::kCorrupt, "the protocol version pickle is not 1001: torch.load fails with \"Invalid protocol version\"");
  // Even at kHeader the chain goes on: nothing short of the main pickle and the storage records
  // says how long the file should be, and they are metadata (the pickle, 8 bytes a storage).
  if (!read("system info", &sys_info)) return check;

  if (!read("main", &main)) {
    if (check.verdict == Verdict::kCorrupt && check.reason.empty()) return check.verdict = Verdict::kOk, std::move(check);
    return check;
  }
  if (main.text_persistent_ids)
    return fail(Verdict::kCorrupt, "the main pickle" + TextPersistentIdsReason());
  check.tensors = main.tensors;
  check.foreign_globals = main.foreign_globals;
  if (!read("storage key list", &keys)) return check;
  std::map<std::string, const PickleStorage*> declared;
  for (const PickleStorage& s : main.storages) declared[s.key] = &s;
  if (keys.root_strings.size() != declared.size())
    return fail(Verdict::kCorrupt, "the main pickle names " + std::to_string(declared.size()) +
                                       " storages but the key list has " + std::to_string(keys.root_strings.size()) +
                                       ": torch.load will fail");

  ByteReader file(read_at, file_size);
  std::string err;
  std::vector<std::uint8_t> buf;
  std::uint64_t nonfinite = 0;
  std::string first_bad;
  for (const std::string& key : keys.root_strings) {
    auto it = declared.find(key);
    if (it == declared.end())
      return fail(Verdict::kCorrupt, "the storage key list names " + key + ", which the main pickle never uses");
    const PickleStorage& s = *it->second;
    std::uint8_t count[8];
    if (file_size - at < 8)
      return fail(Verdict::kTruncated, "file ends at " + std::to_string(file_size) + " bytes, before storage " + key +
                                           " " + kCutShortHint + ": torch.load fails with \"unexpected EOF\"");
    if (!file.Read(at, count, 8, &err)) return fail(Verdict::kCorrupt, err);
    const std::uint64_t numel = LoadLe(count, 8);
    if (numel != s.numel)
      return fail(Verdict::kCorrupt, "storage " + key + " records " + std::to_string(numel) + " elements but the pickle declares " +
                                         std::to_string(s.numel) + ": torch.load will fail");
    at += 8;
    const std::size_t element = StorageElementSize(s.type);
    if (element == 0)
      return fail(Verdict::kCorrupt, "storage " + key + " has type " + s.type + ", which torch does not define");
    if (numel > (file_size - at) / element)
      return fail(Verdict::kTruncated, "file ends at " + std::to_string(file_size) + " bytes, inside storage " + key +
                                           " (" + std::to_string(numel) + " elements of " + s.type + " from offset " +
                                           std::to_string(at) + ") " + kCutShortHint +
                                           ": torch.load fails with \"unexpected EOF\"");
    const std::uint64_t bytes = numel * element;
    check.parameters += numel;
    if (level == Level::kFull) {
      StorageScanner scanner(s.weight ? s.type : std::string());
      constexpr std::size_t kChunk = 256u << 10;  // Scanned while still in L2 (safetensors.cc).
      for (std::uint64_t done = 0; done < bytes;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, bytes - done));
        if (!file.ReadVector(at + done, n, &buf, &err)) return fail(Verdict::kCorrupt, "storage " + key + ": " + err);
        scanner.Add(buf.data(), n);
        done += n;
      }
      if (scanner.nonfinite() && first_bad.empty()) first_bad = key;
      nonfinite += scanner.nonfinite();
    }
    at += bytes;
  }
  if (at != file_size)
    return fail(Verdict::kCorrupt, "file has " + std::to_string(file_size - at) +
                                       " bytes after its last storage: the tail of an older, longer file?");
  if (level == Level::kFull) {
    check.nonfinite = nonfinite;
    if (nonfinite)
      return fail(Verdict::kNonfinite, std::to_string(nonfinite) + " NaN/Inf value" + (nonfinite == 1 ? "" : "s") +
                                           " in model weights, the first in storage " + first_bad +
                                           ": training diverged before this save");
  }
  check.verdict = Verdict::kOk;
  return check;
}

}  // namespace ckptwatch
