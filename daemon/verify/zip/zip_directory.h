// A zip archive's end-of-central-directory record and central directory, read by ckptwatch
// itself (bounded, zip64-aware) so that a save cut short is reported precisely.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "verify/byte_reader.h"  // ReadAt
#include "verify/verdict.h"

namespace ckptwatch {

/// One central-directory entry, checked against the archive's bounds.
struct ZipEntry {
  std::string name;
  std::uint64_t local_offset = 0;     ///< Where its local file header starts.
  std::uint64_t compressed_size = 0;
  std::uint64_t size = 0;             ///< Uncompressed.
  std::uint32_t crc32 = 0;
  std::uint16_t method = 0;           ///< 0 stored, 8 deflated.
  std::uint16_t flags = 0;
};

/// What the end of the archive says; `verdict` is kOk when the directory was read whole.
struct ZipDirectory {
  Verdict verdict = Verdict::kCorrupt;
  std::string reason;  ///< One sentence; empty when kOk.
  std::uint64_t directory_offset = 0;
  std::vector<ZipEntry> entries;
  /// Index into `entries` by name, or -1.
  long Find(const std::string& name) const;
};

/// Most entries a directory may list (a TorchScript model has a few thousand).
inline constexpr std::uint64_t kMaxZipEntries = 1'000'000;

/// Reads the end-of-central-directory record (zip64 too) of a file of `file_size` bytes that
/// starts with a local file header, then the central directory, and checks every entry lies
/// before the directory. A file that starts like a zip but has no end record is kTruncated (a
/// save that stopped before writing its directory: torch.load's "failed finding central
/// directory"). Memory is bounded by kMaxZipEntries and the directory's size on disk.
ZipDirectory ReadZipDirectory(const ReadAt& read_at, std::uint64_t file_size);

/// Where entry `e`'s data starts: reads its local header (30 bytes + name + extra), checks its
/// signature and name; false with `*err` set otherwise.
bool ZipEntryDataOffset(const ReadAt& read_at, std::uint64_t file_size, const ZipEntry& e,
                        std::uint64_t* data_offset, std::string* err);

/// Reads entry `e` whose data starts at `data_offset` (stored or deflated), handing each piece of
/// uncompressed data to `sink` (which may stop the read by returning false), and checks its CRC-32
/// and size against the directory; false with `*err` set otherwise.
bool StreamZipEntry(const ReadAt& read_at, std::uint64_t file_size, const ZipEntry& e,
                    std::uint64_t data_offset,
                    const std::function<bool(const std::uint8_t*, std::size_t)>& sink, std::string* err);

/// The name of the first local file header (at offset 0), empty when there is none: what a
/// save cut short before its directory still tells about the archive.
std::string FirstZipEntryName(const ReadAt& read_at, std::uint64_t file_size);

}  // namespace ckptwatch
