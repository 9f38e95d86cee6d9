#include "verifier.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "hdf5_inspector.h"
#include "keras_zip.h"
#include "page_cache.h"
#include "superblock.h"

namespace ckptwatch {
namespace {

// A read-only descriptor that is always closed.
class ReadOnlyFile {
 public:
  explicit ReadOnlyFile(const std::string& path) {
    // O_NOATIME keeps a verification from dirtying the inode; it needs
    // ownership (or CAP_FOWNER), so fall back without it.
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME);
    if (fd_ < 0 && errno == EPERM) fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  ~ReadOnlyFile() {
    if (fd_ >= 0) close(fd_);
  }
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

std::string OctalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string OpenFailureReason(const std::string& path, int error) {
  struct stat st;
  std::string who;
  if (stat(path.c_str(), &st) == 0)
    who = " (mode " + OctalMode(st.st_mode) + ", owner uid " + std::to_string(st.st_uid) + " gid " +
          std::to_string(st.st_gid) + ", reading as uid " + std::to_string(geteuid()) + ")";
  return std::string("cannot open for reading: ") + std::strerror(error) + who;
}

bool SameFileState(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

std::string Thousands(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// The ok line still tells a person what was checked.
std::string OkSummary(const VerifyResult& r) {
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

void ApplyHeader(const HeaderCheck& header, VerifyResult* result) {
  if (header.superblock) result->superblock_version = header.superblock->version;
  result->expected_bytes = header.expected_bytes;
  result->verdict = header.verdict;
  result->reason = header.reason;
}

void ApplyInspection(const Hdf5Inspection& inspection, VerifyResult* result) {
  result->verdict = inspection.verdict;
  result->reason = inspection.reason;
  result->datasets = inspection.datasets;
  result->parameters = inspection.parameters;
  result->nonfinite = inspection.nonfinite;
  result->keras = inspection.keras;
}

void VerifyHdf5(const std::string& path, int fd, Level level, VerifyResult* result) {
  result->format = "hdf5";
  HeaderCheck header = CheckHeaderOfFd(fd, result->bytes);
  ApplyHeader(header, result);
  if (header.verdict != Verdict::kOk || level == Level::kHeader) return;
  Hdf5Source source{path, {}, result->bytes, header.superblock->base_address};
  std::optional<PageCacheGuard> cache_guard;
  if (level == Level::kFull) cache_guard.emplace(fd, result->bytes);
  ApplyInspection(InspectHdf5(source, level), result);
}

void VerifyKerasArchive(const std::string& path, Level level, const VerifyOptions& options,
                        VerifyResult* result) {
  result->format = "keras_zip";
  KerasArchive archive = ReadKerasArchive(path, level, options.memory_budget);
  result->verdict = archive.verdict;
  result->reason = archive.reason;
  if (archive.verdict != Verdict::kOk) return;
  result->keras = {archive.keras_version, "", "keras3", archive.custom_classes};
  if (archive.weights_over_budget) {
    result->reason = "model.weights.h5 is larger than the verifier's memory budget (" +
                     Thousands(options.memory_budget) + " bytes): only its zip CRC was checked";
    return;
  }
  std::span<const std::uint8_t> image(archive.weights);
  HeaderCheck header = CheckHeader(
      [image](std::uint64_t offset, void* buf, std::size_t n) -> long {
        if (offset >= image.size()) return 0;
        std::size_t count = std::min<std::size_t>(n, image.size() - offset);
        std::memcpy(buf, image.data() + offset, count);
        return static_cast<long>(count);
      },
      image.size());
  ApplyHeader(header, result);
  // expected_bytes describes the file on disk; the inner image's does not.
  result->expected_bytes.reset();
  auto inside = [&] {
    if (!result->reason.empty()) result->reason = "model.weights.h5 inside the archive: " + result->reason;
  };
  if (header.verdict != Verdict::kOk) return inside();
  if (level == Level::kHeader) return;
  Hdf5Source source{path + "/model.weights.h5", image, image.size(), header.superblock->base_address};
  KerasInfo keras = result->keras;
  ApplyInspection(InspectHdf5(source, level), result);
  result->keras = keras;  // the archive's metadata.json and config.json speak for it
  inside();
}

}  // namespace

bool LooksLikeKerasArchive(const std::string& path) {
  if (path.size() >= 6 && path.compare(path.size() - 6, 6, ".keras") == 0) return true;
  ReadOnlyFile file(path);
  unsigned char magic[4] = {};
  return file.fd() >= 0 && pread(file.fd(), magic, 4, 0) == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0;
}

VerifyResult VerifyFile(const std::string& path, const VerifyOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  VerifyResult result;
  result.path = path;
  result.level = options.level;
  auto finish = [&]() -> VerifyResult {
    result.elapsed_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    // An ok verdict may carry a note (level lowered, weights too large).
    if (result.ok()) result.reason = OkSummary(result) + (result.reason.empty() ? "" : "; " + result.reason);
    return std::move(result);
  };

  ReadOnlyFile file(path);
  if (file.fd() < 0) {
    int error = errno;
    if (error == ENOENT || error == ENOTDIR) {
      result.verdict = Verdict::kNotFound;
      result.reason = "no such file or directory (the OSError [Errno 2] of a save into a missing "
                      "directory, or the file was moved or deleted)";
    } else if (error == EACCES || error == EPERM) {
      result.verdict = Verdict::kPermissionDenied;
      result.reason = OpenFailureReason(path, error);
    } else {
      result.verdict = Verdict::kCorrupt;
      result.reason = OpenFailureReason(path, error);
    }
    return finish();
  }
  struct stat before;
  if (fstat(file.fd(), &before) != 0) {
    result.reason = std::string("fstat failed: ") + std::strerror(errno);
    return finish();
  }
  if (!S_ISREG(before.st_mode)) {
    result.verdict = Verdict::kNotHdf5;
    result.reason = "not a regular file";
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

  if (LooksLikeKerasArchive(path))
    VerifyKerasArchive(path, result.level, options, &result);
  else
    VerifyHdf5(path, file.fd(), result.level, &result);

  // A trainer overwriting best.h5 while we read it produces a mix of two
  // saves: say so instead of reporting the mix as truncated or corrupt.
  struct stat after_fd, after_path;
  if (fstat(file.fd(), &after_fd) != 0 || stat(path.c_str(), &after_path) != 0 ||
      !SameFileState(before, after_fd) || !SameFileState(before, after_path)) {
    result.verdict = Verdict::kInProgress;
    result.reason = "file changed while it was being verified (rewritten, replaced or deleted by "
                    "the writer); verify it again once the save has finished";
  }
  if (result.level != options.level && result.ok())
    result.reason = "verified at structure, not full: the file is larger than full_max_bytes";
  return finish();
}

}  // namespace ckptwatch
