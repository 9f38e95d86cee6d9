// Reading raw floating-point extents of a file once, in file order, through one reused buffer,
// and counting NaN/Inf while each block is still in the CPU cache.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "verify/byte_reader.h"  // ReadAt
#include "verify/nonfinite_scan.h"

namespace ckptwatch {

/// A stretch of whole elements to scan, all of one dataset.
struct RawRun {
  std::uint64_t offset = 0;  ///< Absolute file offset of the first element.
  std::uint64_t bytes = 0;   ///< A multiple of the owner's element size.
  std::uint32_t owner = 0;   ///< Index of the dataset (its layout and its count).
};

/// What ScanRawRuns() found, per owner.
struct RawScanCounts {
  std::vector<std::uint64_t> nonfinite;
  std::vector<bool> read_failed;  ///< A read of one of its runs failed (EIO, …).
};

/// Reads every run through `read_at`, in file order, in blocks of at most `block_bytes` aligned
/// to 4 KiB; runs that lie close together are read with one call. Counts each owner's NaN/Inf
/// with `layouts[owner]`. Bytes past the end of the file (a read returns short) count as zeros,
/// as libhdf5's file driver returns them; a failed read marks the run's owner and skips the run.
RawScanCounts ScanRawRuns(std::vector<RawRun> runs, std::span<const FloatLayout> layouts,
                          const ReadAt& read_at, std::size_t block_bytes);

}  // namespace ckptwatch
