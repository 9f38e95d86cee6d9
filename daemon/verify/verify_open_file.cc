#include "verify/verify_open_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>

#include "base/open_beneath.h"
#include "verify/byte_reader.h"
#include "verify/engine/page_cache.h"
#include "verify/format_detect.h"
#include "verify/safetensors/safetensors.h"
#include "verify/torch/torch_checkpoint.h"
#include "verify/torch/torch_storage.h"
#include "verify/zip/zip_directory.h"

namespace ckptwatch {
namespace {

// The content's identity: not ctime, which a chmod or chown right after the save
// changes (trainers and tests do that) without touching a byte; the pipeline
// compares the same fields when it asks whether a file changed.
bool SameFileState(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}
std::string_view FormatTitle(const std::string& format) {
  if (format == "torch_zip") return "PyTorch archive (torch.save)";
  if (format == "torchscript") return "TorchScript archive (torch.jit.save)";
  if (format == "torch_legacy") return "PyTorch legacy file (torch.save, pre-1.6 format)";
  if (format == "safetensors") return "safetensors";
  return "";
}

// The ok line still tells a person what was checked.
std::string OkSummary(const VerifyResult& r) {
  if (std::string_view title = FormatTitle(r.format); !title.empty()) {
    std::string text(title);
    if (r.level != Level::kHeader)
      text += ", " + Thousands(r.datasets) + " tensors, " + Thousands(r.parameters) + " parameters";
    return text;
  }
  std::string text;
  if (r.superblock_version) text = "HDF5 superblock v" + std::to_string(*r.superblock_version);
  if (r.format == "keras_zip") text = "Keras 3 archive" + std::string(text.empty() ? "" : ", inner " + text);
  if (r.level != Level::kHeader)
    text += ", " + Thousands(r.datasets) + " datasets, " + Thousands(r.parameters) + " parameters";
  if (!r.keras.kind.empty()) {
    text += ", Keras";
    if (!r.keras.version.empty()) text += " " + r.keras.version;
    text += " " + r.keras.kind;
  }
  if (!r.keras.custom_classes.empty()) {
    text += "; loads only with custom_objects for: ";
    for (std::size_t i = 0; i < r.keras.custom_classes.size(); ++i)
      text += (i ? ", " : "") + r.keras.custom_classes[i];
  }
  return text;
}

// A deep reader this binary does not link (the `ckptwatch` front has neither libhdf5 nor
// libzip): the caller was to hand the file to a child. Said, not crashed on.
void NotReadHere(std::string_view what, VerifyResult* result) {
  result->verdict = Verdict::kVerifierCrashed;
  result->reason = std::string(what) + " needs the ckptwatch engine (libhdf5, libzip), which this "
                   "process does not have: not verified";
}

void VerifyHdf5(const std::string& name, int fd, Level level, const VerifyOptions& options,
                const DeepReaders& deep, VerifyResult* result) {
  result->format = "hdf5";
  HeaderCheck header = CheckHeaderOfFd(fd, result->bytes);
  ApplyHeader(header, result);
  if (header.verdict != Verdict::kOk || level == Level::kHeader) return;
  if (!deep.hdf5) return NotReadHere("HDF5 beyond its superblock", result);
  deep.hdf5(name, fd, header, level, options, result);
}

void VerifyKeras(const std::string& name, int fd, Level level, const VerifyOptions& options,
                 const DeepReaders& deep, VerifyResult* result) {
  if (!deep.keras) {
    result->format = "keras_zip";
    return NotReadHere("a .keras archive", result);
  }
  deep.keras(name, fd, level, options, result);
}

void VerifySafetensors(int fd, Level level, VerifyResult* result) {
  result->format = "safetensors";
  std::optional<PageCacheGuard> cache_guard;
  if (level == Level::kFull) cache_guard.emplace(fd, result->bytes);
  SafetensorsCheck check = CheckSafetensors(FdReadAt(fd), result->bytes, level);
  result->verdict = check.verdict;
  result->reason = check.reason;
  result->expected_bytes = check.expected_bytes;
  result->datasets = check.tensors;
  result->parameters = check.parameters;
  result->nonfinite = check.nonfinite;
}

void VerifyTorch(int fd, FileFormat format, Level level, VerifyResult* result) {
  result->format = FormatName(format);
  std::optional<PageCacheGuard> cache_guard;
  if (level == Level::kFull) cache_guard.emplace(fd, result->bytes);
  const ReadAt read_at = FdReadAt(fd);
  TorchCheck check = format == FileFormat::kTorchLegacy ? CheckTorchLegacy(read_at, result->bytes, level)
                                                        : CheckTorchZip(read_at, result->bytes, level);
  result->verdict = check.verdict;
  result->reason = check.reason;
  result->datasets = check.tensors;
  result->parameters = check.parameters;
  result->nonfinite = check.nonfinite;
  if (check.verdict != Verdict::kOk) return;
  result->pickle_globals = check.foreign_globals;
  // Notes on an ok verdict: what a load will need, what was not checked.
  std::string note = ForeignGlobalsNote(check.foreign_globals);
  if (note.size() > 2) note = note.substr(2);
  if (!check.note.empty()) note += (note.empty() ? "" : "; ") + check.note;
  result->reason = note;
}

bool HasSuffix(const std::string& name, std::string_view suffix) {
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A file that ends within the first bytes of a weight format's signature: a save that stopped
// right at its start. A name promising safetensors says what 1-8 bytes can only be the start of.
bool CutWithinSignature(const std::string& name, int fd, std::uint64_t size) {
  if (size >= 16) return false;
  if (size < 9 && HasSuffix(name, ".safetensors")) return true;
  unsigned char head[16] = {};
  const long n = pread(fd, head, sizeof head, 0);
  if (n <= 0) return false;
  static const std::string_view kStarts[] = {
      {"\x89HDF\r\n\x1a\n", 8}, {"PK\x03\x04", 4}, {"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14}};
  for (std::string_view start : kStarts)
    if (static_cast<std::size_t>(n) < start.size() && std::memcmp(head, start.data(), static_cast<std::size_t>(n)) == 0)
      return true;
  return false;
}
void VerifyByContent(const std::string& name, int fd, Level level, const VerifyOptions& options,
                     const DeepReaders& deep, VerifyResult* result) {
  const ReadAt read_at = FdReadAt(fd);
  const FileFormat format = DetectFormat(read_at, result->bytes, name);
  switch (format) {
    case FileFormat::kHdf5:
      return VerifyHdf5(name, fd, level, options, deep, result);
    case FileFormat::kKerasZip:
      return VerifyKeras(name, fd, level, options, deep, result);
    case FileFormat::kTorchZip:
    case FileFormat::kTorchScript:
    case FileFormat::kTorchLegacy:
      return VerifyTorch(fd, format, level, result);
    case FileFormat::kSafetensors:
      return VerifySafetensors(fd, level, result);
    case FileFormat::kZip:
      // A .keras that is a zip of something else: the Keras reader says what is missing.
      if (HasSuffix(name, ".keras")) return VerifyKeras(name, fd, level, options, deep, result);
      if (ZipDirectory dir = ReadZipDirectory(read_at, result->bytes); dir.verdict == Verdict::kTruncated) {
        result->format = FormatName(format);
        result->verdict = dir.verdict;
        result->reason = dir.reason;
        return;
      }
      break;
    default:
      break;
  }
  result->format = FormatName(format);
  if (CutWithinSignature(name, fd, result->bytes)) {
    result->verdict = Verdict::kTruncated;
    result->reason = "file is " + std::to_string(result->bytes) +
                     " bytes, too short for any weight format: the save stopped within its first bytes "
                     "(disk full or writer killed during save?)";
    return;
  }
  result->verdict = Verdict::kNotCheckpoint;
  result->reason = NotWeightsReason(format, read_at, result->bytes);
}
}  // namespace

std::string Thousands(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

void ApplyHeader(const HeaderCheck& header, VerifyResult* result) {
  if (header.superblock) result->superblock_version = header.superblock->version;
  result->expected_bytes = header.expected_bytes;
  result->verdict = header.verdict;
  result->reason = header.reason;
}
bool IsQuietlySkipped(const std::string& path, const VerifyResult& result) {
  if (!HasSuffix(path, ".bin") || result.verdict != Verdict::kNotCheckpoint) return false;
  for (FileFormat f : {FileFormat::kUnknown, FileFormat::kText, FileFormat::kJson, FileFormat::kPickle, FileFormat::kZip})
    if (result.format == FormatName(f)) return true;
  return false;
}

bool LooksLikeKerasArchive(const std::string& name, int fd) {
  if (name.size() >= 6 && name.compare(name.size() - 6, 6, ".keras") == 0) return true;
  unsigned char magic[4] = {};
  return pread(fd, magic, 4, 0) == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0;
}

VerifyResult UnopenedResult(const std::string& path, const OpenedEntry& entry, Level level) {
  VerifyResult result;
  result.path = path;
  result.level = level;
  switch (entry.kind) {
    case EntryKind::kRegular:
      break;
    case EntryKind::kNotRegular:
    case EntryKind::kSymlink:
      result.verdict = Verdict::kNotRegular;
      result.reason = std::string("not a regular file but a ") + FileTypeName(entry.st.st_mode) +
                      ": not opened (a checkpoint is a regular file)";
      break;
    case EntryKind::kMissing:
      result.verdict = Verdict::kNotFound;
      result.reason = "no such file or directory (the OSError [Errno 2] of a save into a missing "
                      "directory, or the file was moved or deleted)";
      break;
    case EntryKind::kDenied:
      result.verdict = Verdict::kPermissionDenied;
      result.reason = std::string("cannot open for reading: ") + std::strerror(entry.error);
      if (entry.st.st_ino != 0) {
        char who[128];
        std::snprintf(who, sizeof who, " (mode %04o, owner uid %u gid %u, reading as uid %u)",
                      static_cast<unsigned>(entry.st.st_mode & 07777), static_cast<unsigned>(entry.st.st_uid),
                      static_cast<unsigned>(entry.st.st_gid), static_cast<unsigned>(geteuid()));
        result.reason += who;
      } else {
        result.reason += " (reading as uid " + std::to_string(geteuid()) + ")";
      }
      break;
    case EntryKind::kWithheld:
      // permission_denied: the daemon may read it, but not for whoever put this name here.
      // The reason names no contents, only what stat shows anyone who may search the directory.
      result.verdict = Verdict::kPermissionDenied;
      result.reason = entry.withheld;
      break;
    case EntryKind::kSymlinkInPath:
      result.verdict = Verdict::kNotRegular;
      result.reason = "a directory on the way is a symlink: not followed";
      break;
    case EntryKind::kError:
      result.verdict = Verdict::kCorrupt;
      result.reason = std::string("cannot open for reading: ") + std::strerror(entry.error);
      break;
  }
  return result;
}
VerifyResult VerifyOpenFileWith(int fd, const std::string& name, const VerifyOptions& options,
                                const DeepReaders& deep) {
  const auto started = std::chrono::steady_clock::now();
  VerifyResult result;
  result.path = name;
  result.level = options.level;
  auto finish = [&]() -> VerifyResult {
    result.elapsed_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    // An ok verdict may carry a note (level lowered, weights too large).
    if (result.ok()) result.reason = OkSummary(result) + (result.reason.empty() ? "" : "; " + result.reason);
    return std::move(result);
  };

  struct stat before;
  if (fstat(fd, &before) != 0) {
    result.reason = std::string("fstat failed: ") + std::strerror(errno);
    return finish();
  }
  if (!S_ISREG(before.st_mode)) {
    result.verdict = Verdict::kNotRegular;
    result.reason = std::string("not a regular file but a ") + FileTypeName(before.st_mode) +
                    ": not read (a checkpoint is a regular file)";
    return finish();
  }
  result.bytes = static_cast<std::uint64_t>(before.st_size);
  if (result.bytes == 0) {
    result.verdict = Verdict::kEmpty;
    result.reason = "file is empty (0 bytes): the save failed before writing anything "
                    "(disk full, or the process died at the start of the save?)";
    return finish();
  }
  if (options.level == Level::kFull && result.bytes > options.full_max_bytes)
    result.level = Level::kStructure;

  VerifyByContent(name, fd, result.level, options, deep, &result);

  // A trainer overwriting best.h5 in place while we read it produces a mix
  // of two saves: say so instead of reporting the mix as truncated or corrupt.
  // (A replacement by rename leaves this inode whole; the new file gets its
  // own verdict.)
  MarkIfChanged(fd, before, &result);
  if (options.level == Level::kFull && result.bytes > options.full_max_bytes && result.ok())
    result.reason = "verified at structure, not full: the file is larger than full_max_bytes";
  return finish();
}
std::optional<VerifyResult> FirstLook(int fd, const std::string& name, const VerifyOptions& options) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  switch (size == 0 ? FileFormat::kUnknown : DetectFormat(FdReadAt(fd), size, name)) {
    case FileFormat::kKerasZip:
    case FileFormat::kTorchLegacy:
      return std::nullopt;  // their header level runs libzip or the pickle reader
    case FileFormat::kZip:
      if (HasSuffix(name, ".keras")) return std::nullopt;
      break;
    default:
      break;
  }
  VerifyOptions header = options;
  header.level = Level::kHeader;
  VerifyResult result = VerifyOpenFileWith(fd, name, header, DeepReaders{});
  if (options.level == Level::kHeader) return result;
  // Verdicts that no deeper level changes: the child's checks start with these same ones.
  // (A corrupt header goes to the child, whose reason can be more precise.) Not truncated:
  // a file looked at within microseconds of a write event is often a save still being
  // written between two writes, and the pipeline tells that from a failed save only by the
  // file changing before the verdict arrives (docs/reliability.md) — a child takes long
  // enough for that, this look does not.
  switch (result.verdict) {
    case Verdict::kEmpty:
    case Verdict::kNotCheckpoint:
    case Verdict::kInProgress:
      break;
    default:
      return std::nullopt;
  }
  result.level = options.level == Level::kFull && result.bytes > options.full_max_bytes ? Level::kStructure
                                                                                         : options.level;
  return result;
}
void MarkIfChanged(int fd, const struct stat& before, VerifyResult* result) {
  struct stat after;
  if (fstat(fd, &after) == 0 && SameFileState(before, after)) return;
  result->verdict = Verdict::kInProgress;
  result->reason = "file changed while it was being verified (rewritten, replaced or deleted by "
                   "the writer); verify it again once the save has finished";
}

}  // namespace ckptwatch
