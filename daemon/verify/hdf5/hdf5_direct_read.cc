#include "verify/hdf5/hdf5_direct_read.h"

#include <algorithm>
#include <utility>

#include "verify/hdf5/hdf5_handle.h"

namespace ckptwatch {
namespace {

// Reads of 512 KiB, the per-core L2 cache here: the block is scanned right after the kernel
// copied it in. 128 KiB to 1 MiB measured alike on a warm 1 GiB file; 4 MiB was slower, and
// smaller blocks cost more system calls.
constexpr std::size_t kBlockBytes = 512u << 10;
// Edge chunks of an N-d dataset are read a row at a time; past this many runs in one file the
// bookkeeping costs more than libhdf5's own read.
constexpr std::size_t kMaxRuns = std::size_t{1} << 20;

// a * b, or nothing when it does not fit.
std::optional<std::uint64_t> Multiply(std::uint64_t a, std::uint64_t b) {
  if (b != 0 && a > UINT64_MAX / b) return std::nullopt;
  return a * b;
}

// What libhdf5 reads for an unallocated chunk: the fill value when one is written at
// allocation or set (and zeros by default); with no fill value, or fill time "never", it leaves
// the buffer as it was, which only libhdf5 itself can reproduce.
std::optional<bool> FillValueIsNonfinite(hid_t dcpl, hid_t type, const FloatLayout& layout) {
  H5D_fill_time_t fill_time;
  H5D_fill_value_t status;
  if (H5Pget_fill_time(dcpl, &fill_time) < 0 || H5Pfill_value_defined(dcpl, &status) < 0)
    return std::nullopt;
  if (fill_time == H5D_FILL_TIME_NEVER) return std::nullopt;
  if (status != H5D_FILL_VALUE_DEFAULT && status != H5D_FILL_VALUE_USER_DEFINED)
    return std::nullopt;
  std::vector<std::uint8_t> fill(layout.size);
  if (H5Pget_fill_value(dcpl, type, fill.data()) < 0) return std::nullopt;
  return CountNonfinite(layout, fill.data(), 1) == 1;
}

}  // namespace

std::optional<FloatLayout> FloatLayoutOfType(hid_t float_type) {
  std::size_t sign = 0, exponent_pos = 0, exponent_bits = 0, mantissa_pos = 0, mantissa_bits = 0;
  if (H5Tget_fields(float_type, &sign, &exponent_pos, &exponent_bits, &mantissa_pos,
                    &mantissa_bits) < 0)
    return std::nullopt;
  int offset = H5Tget_offset(float_type);
  if (offset < 0) return std::nullopt;
  return FloatLayout{H5Tget_size(float_type), exponent_pos + static_cast<std::size_t>(offset),
                     exponent_bits};
}

std::optional<std::uint64_t> AppendChunkRuns(const std::vector<hsize_t>& dims,
                                             const std::vector<hsize_t>& chunk,
                                             const std::vector<hsize_t>& coords,
                                             std::uint64_t file_offset, std::uint64_t element,
                                             std::uint32_t owner, std::size_t max_runs,
                                             std::vector<RawRun>* runs) {
  const std::size_t rank = dims.size();
  if (rank == 0 || chunk.size() != rank || coords.size() != rank) return std::nullopt;
  std::vector<std::uint64_t> extent(rank), stride(rank);
  std::uint64_t inner = 1;
  for (std::size_t d = rank; d-- > 0;) {
    if (coords[d] >= dims[d] || chunk[d] == 0) return std::nullopt;
    extent[d] = std::min<std::uint64_t>(chunk[d], dims[d] - coords[d]);
    stride[d] = inner;  // elements, row-major inside the chunk
    inner *= chunk[d];  // the caller checked the chunk's size fits
  }
  // The run spans dimension k and every later one, all of which are whole in this chunk.
  std::size_t k = rank - 1;
  while (k > 0 && extent[k] == chunk[k]) --k;
  const std::uint64_t run_elements = extent[k] * stride[k];
  std::uint64_t count = 1;
  for (std::size_t d = 0; d < k; ++d) count *= extent[d];
  if (count > max_runs || runs->size() > max_runs - count) return std::nullopt;
  std::vector<std::uint64_t> index(k, 0);
  for (std::uint64_t r = 0; r < count; ++r) {
    std::uint64_t first = 0;
    for (std::size_t d = 0; d < k; ++d) first += index[d] * stride[d];
    runs->push_back({file_offset + first * element, run_elements * element, owner});
    for (std::size_t d = k; d-- > 0;) {  // next row: the last leading index moves fastest
      if (++index[d] < extent[d]) break;
      index[d] = 0;
    }
  }
  return count * run_elements;
}

bool DirectReads::Plan(hid_t dataset, hid_t dcpl, const RawStorage& storage, std::uint64_t visit,
                       const std::string& path) {
  if (storage.layout != H5D_CONTIGUOUS && storage.layout != H5D_CHUNKED) return false;
  if (H5Pget_nfilters(dcpl) != 0 || H5Pget_external_count(dcpl) != 0) return false;
  Hid type(H5Dget_type(dataset), H5Tclose);
  Hid space(H5Dget_space(dataset), H5Sclose);
  if (!type.valid() || !space.valid() || H5Tget_class(type.get()) != H5T_FLOAT) return false;
  const H5T_order_t order = H5Tget_order(type.get());
  if (order != H5T_ORDER_LE && order != H5T_ORDER_BE) return false;
  std::optional<FloatLayout> layout = FloatLayoutOfType(type.get());
  if (!layout || (layout->size != 2 && layout->size != 4 && layout->size != 8)) return false;
  layout->big_endian = order == H5T_ORDER_BE;
  if (H5Sget_simple_extent_type(space.get()) != H5S_SIMPLE &&
      H5Sget_simple_extent_type(space.get()) != H5S_SCALAR)
    return false;
  const hssize_t points = H5Sget_simple_extent_npoints(space.get());
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (points <= 0 || rank < 0) return false;
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) return false;
  const std::uint64_t element = layout->size;
  const std::optional<std::uint64_t> data_bytes =
      Multiply(static_cast<std::uint64_t>(points), element);
  if (!data_bytes) return false;
  auto inside = [&](std::uint64_t start, std::uint64_t bytes) {
    return start <= read_limit_ && bytes <= read_limit_ - start;
  };

  const auto owner = static_cast<std::uint32_t>(datasets_.size());
  std::vector<RawRun> runs;
  std::uint64_t fill_nonfinite = 0;
  if (storage.layout == H5D_CONTIGUOUS) {
    // Never written: libhdf5 reads the fill value, and decides what that is.
    if (storage.offset == HADDR_UNDEF || storage.bytes != *data_bytes) return false;
    if (!inside(storage.offset, storage.bytes)) return false;
    runs.push_back({storage.offset, storage.bytes, owner});
  } else {
    if (!storage.all_chunks_listed || rank == 0) return false;
    std::vector<hsize_t> chunk(dims.size());
    if (H5Pget_chunk(dcpl, rank, chunk.data()) != rank) return false;
    std::optional<std::uint64_t> chunk_bytes = element;
    for (hsize_t c : chunk) chunk_bytes = chunk_bytes ? Multiply(*chunk_bytes, c) : std::nullopt;
    if (!chunk_bytes || *chunk_bytes == 0) return false;
    // Each chunk once, on the chunk grid: a damaged index that lists one twice, or off the grid,
    // is libhdf5's to read.
    std::vector<const ChunkExtent*> sorted;
    for (const ChunkExtent& c : storage.chunks) sorted.push_back(&c);
    std::sort(sorted.begin(), sorted.end(),
              [](const ChunkExtent* a, const ChunkExtent* b) { return a->coords < b->coords; });
    std::uint64_t allocated = 0;
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      const ChunkExtent& c = *sorted[i];
      if (i > 0 && sorted[i - 1]->coords == c.coords) return false;
      if (c.address == HADDR_UNDEF || c.bytes != *chunk_bytes || c.coords.size() != dims.size())
        return false;
      for (std::size_t d = 0; d < dims.size(); ++d)
        if (c.coords[d] % chunk[d] != 0) return false;
      const std::uint64_t start = base_address_ + c.address;
      if (start < c.address || !inside(start, c.bytes)) return false;
      std::optional<std::uint64_t> elements = AppendChunkRuns(
          dims, chunk, c.coords, start, element, owner, kMaxRuns - runs_.size(), &runs);
      if (!elements) return false;
      allocated += *elements;
    }
    if (allocated > static_cast<std::uint64_t>(points)) return false;
    if (const std::uint64_t unallocated = static_cast<std::uint64_t>(points) - allocated) {
      std::optional<bool> nonfinite = FillValueIsNonfinite(dcpl, type.get(), *layout);
      if (!nonfinite) return false;
      if (*nonfinite) fill_nonfinite = unallocated;
    }
  }
  if (runs.size() > kMaxRuns - runs_.size()) return false;
  runs_.insert(runs_.end(), runs.begin(), runs.end());
  layouts_.push_back(*layout);
  datasets_.push_back({path, visit, fill_nonfinite, false});
  return true;
}

const std::vector<DirectReads::Dataset>& DirectReads::Read(const ReadAt& read_at) {
  if (runs_.empty()) return datasets_;
  RawScanCounts counts = ScanRawRuns(std::move(runs_), layouts_, read_at, kBlockBytes);
  runs_.clear();
  for (std::size_t i = 0; i < datasets_.size(); ++i) {
    datasets_[i].nonfinite += counts.nonfinite[i];
    datasets_[i].read_failed = counts.read_failed[i];
  }
  return datasets_;
}

}  // namespace ckptwatch
