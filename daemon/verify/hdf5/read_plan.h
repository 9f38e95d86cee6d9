// Which hyperslab blocks to read so a whole dataset passes through one small
// reused buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ckptwatch {

/// Splits an N-d dataset into row-major blocks of at most about
/// `target_bytes`, aligned to `granule` (the chunk shape, or all ones for
/// contiguous data) so each chunk is decompressed exactly once. A single
/// chunk larger than `max_bytes` is read in sub-chunk slices instead.
class ReadPlan {
 public:
  ReadPlan(std::vector<std::uint64_t> dims, std::vector<std::uint64_t> granule,
           std::size_t element_size, std::size_t target_bytes, std::size_t max_bytes);

  /// Bytes a buffer needs to hold the largest block.
  std::size_t buffer_bytes() const { return buffer_bytes_; }
  /// The block shape (full blocks; edge blocks are clipped).
  const std::vector<std::uint64_t>& block() const { return block_; }
  /// The next block's start and count; false when every element was covered.
  /// A rank-0 (scalar) dataset yields one empty block.
  template <typename Int>
  bool Next(std::vector<Int>* start, std::vector<Int>* count);

 private:
  bool Advance();
  std::vector<std::uint64_t> dims_, block_, position_;
  std::size_t buffer_bytes_ = 0;
  bool done_ = false;
};

template <typename Int>
bool ReadPlan::Next(std::vector<Int>* start, std::vector<Int>* count) {
  if (done_) return false;
  start->assign(position_.begin(), position_.end());
  count->resize(dims_.size());
  for (std::size_t d = 0; d < dims_.size(); ++d)
    (*count)[d] = static_cast<Int>(std::min(block_[d], dims_[d] - position_[d]));
  done_ = !Advance();
  return true;
}

}  // namespace ckptwatch
