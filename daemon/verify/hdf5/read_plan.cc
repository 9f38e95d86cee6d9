#include "verify/hdf5/read_plan.h"

#include <algorithm>

namespace ckptwatch {

ReadPlan::ReadPlan(std::vector<std::uint64_t> dims, std::vector<std::uint64_t> granule,
                   std::size_t element_size, std::size_t target_bytes, std::size_t max_bytes)
    : dims_(std::move(dims)), block_(dims_.size(), 1), position_(dims_.size(), 0) {
  const std::size_t rank = dims_.size();
  element_size = std::max<std::size_t>(element_size, 1);
  for (std::uint64_t d : dims_)
    if (d == 0) done_ = true;
  granule.resize(rank, 1);

  auto product = [&](const std::vector<std::uint64_t>& shape) {
    std::uint64_t n = 1;
    for (std::uint64_t s : shape) n *= s;
    return n;
  };
  for (std::size_t d = 0; d < rank; ++d) block_[d] = std::clamp<std::uint64_t>(granule[d], 1, dims_[d] ? dims_[d] : 1);
  std::uint64_t capacity = std::max<std::uint64_t>(1, target_bytes / element_size);
  if (product(block_) > capacity) {
    if (product(block_) * element_size <= max_bytes) {
      capacity = product(block_);  // one whole chunk per block
    } else {
      std::fill(granule.begin(), granule.end(), 1);  // slice the oversized chunk
      std::fill(block_.begin(), block_.end(), 1);
    }
  }
  // Grow from the fastest-varying dimension outwards, whole granules at a time.
  for (std::size_t i = rank; i-- > 0;) {
    std::uint64_t others = product(block_) / block_[i];
    std::uint64_t fit = capacity / others;
    if (fit >= dims_[i]) {
      block_[i] = std::max<std::uint64_t>(dims_[i], 1);
      continue;
    }
    std::uint64_t g = std::max<std::uint64_t>(granule[i], 1);
    block_[i] = std::max(block_[i], fit / g * g);
    break;
  }
  buffer_bytes_ = static_cast<std::size_t>(product(block_)) * element_size;
}

bool ReadPlan::Advance() {
  // Odometer over block origins, last dimension fastest.
  for (std::size_t d = dims_.size(); d-- > 0;) {
    position_[d] += block_[d];
    if (position_[d] < dims_[d]) return true;
    position_[d] = 0;
  }
  return false;
}

}  // namespace ckptwatch
