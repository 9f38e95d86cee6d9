// The HDF5 superblock, parsed without libhdf5, and the header-level verdict it gives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "verify/byte_reader.h"  // ReadAt
#include "verify/verdict.h"

namespace ckptwatch {

/// The superblock fields header checks use (HDF5 file format spec, section II.A).
/// Addresses are as stored; all-ones bytes decode to kUndefinedAddress.
struct Superblock {
  static constexpr std::uint64_t kUndefinedAddress = ~std::uint64_t{0};

  std::uint64_t signature_offset = 0;  ///< 0, or a user-block size 512, 1024, 2048, ...
  int version = 0;                     ///< 0..3.
  int sizeof_offsets = 0;              ///< 2, 4, 8, 16 or 32 bytes: what libhdf5 accepts.
  int sizeof_lengths = 0;              ///< 2, 4, 8, 16 or 32 bytes.
  std::uint64_t base_address = 0;      ///< Normally == signature_offset.
  std::uint64_t eof_address = 0;   ///< Absolute (includes the user block), as libhdf5 writes it.
  std::uint64_t root_address = 0;  ///< Root group object header, relative to the base.
  std::uint32_t consistency_flags = 0;  ///< v2/v3: 1 byte; v0/v1: the 4-byte status field.

  /// v3 only: bit 0, a writer has the file open (or died before closing it).
  bool open_for_write() const;
  /// v3 only: bit 2, a SWMR writer has the file open.
  bool swmr_write() const;
  /// The file size this superblock implies: eof_address moved by signature_offset -
  /// base_address, as libhdf5 does for a file whose user block changed; nullopt when
  /// the end-of-file address is undefined or the result does not fit in 64 bits.
  std::optional<std::uint64_t> ExpectedFileSize() const;
};

/// What the header says about a file; `superblock` is set whenever it could be parsed.
struct HeaderCheck {
  Verdict verdict = Verdict::kCorrupt;
  std::string reason;  ///< One sentence a person can act on; empty when kOk.
  std::optional<Superblock> superblock;
  std::optional<std::uint64_t> expected_bytes;  ///< Superblock::ExpectedFileSize().
};

/// Header-level verdict for a file of `file_size` bytes: locates the signature as libhdf5
/// does, parses and checks the superblock and compares the sizes. Reads at most a few KiB
/// whatever the file size.
HeaderCheck CheckHeader(const ReadAt& read_at, std::uint64_t file_size);
/// CheckHeader() on an open file descriptor, reading with pread(2).
HeaderCheck CheckHeaderOfFd(int fd, std::uint64_t file_size);

/// Parses the superblock whose signature starts at bytes[0] (found at `signature_offset`
/// in the file), verifying the v2/v3 checksum; false with `*err` set when `bytes` is
/// shorter than the superblock or the superblock is malformed.
bool ParseSuperblock(std::span<const std::uint8_t> bytes, std::uint64_t signature_offset,
                     Superblock* out, std::string* err);

}  // namespace ckptwatch
