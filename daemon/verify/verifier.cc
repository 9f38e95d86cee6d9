#include "verify/verifier.h"

#include <optional>
#include <span>

#include "verify/byte_reader.h"
#include "verify/engine/page_cache.h"
#include "verify/hdf5/hdf5_inspector.h"
#include "verify/hdf5/superblock.h"
#include "verify/keras/keras_zip.h"
#include "verify/verify_open_file.h"

namespace ckptwatch {
namespace {

void ApplyInspection(const Hdf5Inspection& inspection, VerifyResult* result) {
  result->verdict = inspection.verdict;
  result->reason = inspection.reason;
  result->datasets = inspection.datasets;
  result->parameters = inspection.parameters;
  result->nonfinite = inspection.nonfinite;
  result->keras = inspection.keras;
  if (inspection.verdict == Verdict::kOk && inspection.full_skipped_datasets > 0) {
    result->level = Level::kStructure;
    result->reason = "verified at structure, not full: " + std::to_string(inspection.full_skipped_datasets) +
                     " compressed datasets would decode to " + Thousands(inspection.full_skipped_bytes) +
                     " bytes, past the bound of " + Thousands(inspection.decode_budget) +
                     " for this file (4x its size, at least 256 MiB): a compression bomb, or unusually "
                     "compressible data; their layout and chunk index were checked, their values not read";
  }
}
// libhdf5 past a superblock CheckHeaderOfFd() found sound, on the same descriptor.
void InspectHdf5File(const std::string& name, int fd, const HeaderCheck& header, Level level,
                     const VerifyOptions& options, VerifyResult* result) {
  const Hdf5Source source{.fd = fd,
                          .name = name,
                          .image = {},
                          .file_size = result->bytes,
                          .base_address = header.superblock->base_address,
                          .end_of_allocation = header.expected_bytes,
                          .direct_reads = options.direct_reads};
  // Direct reads go through `fd` inside the guard's lifetime, as libhdf5's do.
  std::optional<PageCacheGuard> cache_guard;
  if (level == Level::kFull) cache_guard.emplace(fd, result->bytes);
  ApplyInspection(InspectHdf5(source, level), result);
}

void VerifyKerasArchive(const std::string& name, int fd, Level level, const VerifyOptions& options,
                        VerifyResult* result) {
  result->format = "keras_zip";
  KerasArchive archive = ReadKerasArchive(fd, level, options.memory_budget);
  result->verdict = archive.verdict;
  result->reason = archive.reason;
  if (archive.verdict != Verdict::kOk) return;
  result->keras = archive.keras;
  if (archive.weights_over_budget) {
    result->reason = "model.weights.h5 is larger than the verifier's memory budget (" +
                     Thousands(options.memory_budget) + " bytes): only its zip CRC was checked";
    return;
  }
  std::span<const std::uint8_t> image(archive.weights);
  HeaderCheck header = CheckHeader(SpanReadAt(image), image.size());
  ApplyHeader(header, result);
  // expected_bytes describes the file on disk; the inner image's does not.
  result->expected_bytes.reset();
  auto inside = [&] {
    if (!result->reason.empty()) result->reason = "model.weights.h5 inside the archive: " + result->reason;
  };
  if (header.verdict != Verdict::kOk) return inside();
  if (level == Level::kHeader) return;
  const Hdf5Source source{.name = name + "/model.weights.h5",
                          .image = image,
                          .file_size = image.size(),
                          .base_address = header.superblock->base_address,
                          .end_of_allocation = header.expected_bytes,
                          .direct_reads = options.direct_reads};
  KerasInfo keras = result->keras;
  ApplyInspection(InspectHdf5(source, level), result);
  result->keras = keras;  // the archive's metadata.json and config.json speak for it
  inside();
}
}  // namespace

VerifyResult VerifyOpenFile(int fd, const std::string& name, const VerifyOptions& options) {
  return VerifyOpenFileWith(fd, name, options, DeepReaders{&InspectHdf5File, &VerifyKerasArchive});
}

VerifyResult VerifyFile(const std::string& path, const VerifyOptions& options) {
  OpenedEntry entry = OpenRegularFile(path);
  if (entry.kind != EntryKind::kRegular) return UnopenedResult(path, entry, options.level);
  return VerifyOpenFile(entry.fd.get(), path, options);
}

}  // namespace ckptwatch
