// Reading unfiltered floating-point HDF5 datasets straight from the file: libhdf5 says where
// their bytes are, the bytes are read once in file order (raw_scan) rather than through
// H5Dread. Only datasets whose read needs no conversion, filter or fill-value decision are
// taken; libhdf5 reads every other one as before.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "verify/hdf5/raw_scan.h"
#include "verify/nonfinite_scan.h"

namespace ckptwatch {

/// The layout of an HDF5 floating-point type (its byte order left to the caller).
std::optional<FloatLayout> FloatLayoutOfType(hid_t float_type);

/// One allocated chunk as H5Dget_chunk_info() lists it.
struct ChunkExtent {
  std::vector<hsize_t> coords;    ///< Element coordinates of its first element.
  haddr_t address = HADDR_UNDEF;  ///< Relative to the superblock's base address.
  hsize_t bytes = 0;
};

/// Where a dataset's raw data lies, as the storage check found it.
struct RawStorage {
  H5D_layout_t layout = H5D_LAYOUT_ERROR;
  haddr_t offset = HADDR_UNDEF;     ///< Contiguous: absolute; HADDR_UNDEF when never written.
  hsize_t bytes = 0;                ///< Contiguous: its storage size.
  std::vector<ChunkExtent> chunks;  ///< Chunked: every allocated chunk, when all were listed.
  bool all_chunks_listed = false;
};

/// In-extent elements of the chunk at `coords` (shape `chunk`, dataset `dims`), appended to
/// `*runs` as byte runs of `element`-byte elements from `file_offset`, for `owner`: an edge
/// chunk's elements outside the dataset are never read. Returns the elements covered, or
/// nothing when the runs would exceed `max_runs`.
std::optional<std::uint64_t> AppendChunkRuns(const std::vector<hsize_t>& dims,
                                             const std::vector<hsize_t>& chunk,
                                             const std::vector<hsize_t>& coords,
                                             std::uint64_t file_offset, std::uint64_t element,
                                             std::uint32_t owner, std::size_t max_runs,
                                             std::vector<RawRun>* runs);

/// The datasets a walk hands over to be read directly, and then their counts.
class DirectReads {
 public:
  /// Storage must end by `read_limit` (the smaller of the file's size and its end of
  /// allocation, absolute); chunk addresses are relative to `base_address`.
  DirectReads(std::uint64_t read_limit, std::uint64_t base_address)
      : read_limit_(read_limit), base_address_(base_address) {}

  /// Takes `dataset` (the `visit`-th of the walk, at `path`) when its bytes can be read
  /// directly with the same result libhdf5's read would give; false leaves it to libhdf5.
  bool Plan(hid_t dataset, hid_t dcpl, const RawStorage& storage, std::uint64_t visit,
            const std::string& path);

  struct Dataset {
    std::string path;
    std::uint64_t visit = 0;
    std::uint64_t nonfinite = 0;  ///< Unallocated chunks' fill values before Read(), then all.
    bool read_failed = false;     ///< libhdf5 must read it again: its error is the verdict.
  };
  /// Reads every planned run through `read_at` and completes the datasets' counts.
  const std::vector<Dataset>& Read(const ReadAt& read_at);

 private:
  std::uint64_t read_limit_, base_address_;
  std::vector<RawRun> runs_;
  std::vector<FloatLayout> layouts_;
  std::vector<Dataset> datasets_;
};

}  // namespace ckptwatch
