// Bob Jenkins' lookup3 hash: the checksum HDF5 puts on its metadata.
#pragma once

#include <cstdint>
#include <span>

namespace ckptwatch {

/// lookup3 `hashlittle` of `data` seeded with `initval`, bit-for-bit what HDF5's
/// H5_checksum_lookup3() computes (bytes read one at a time, so the result does not
/// depend on alignment or host byte order). HDF5 metadata checksums use initval 0.
std::uint32_t Lookup3(std::span<const std::uint8_t> data, std::uint32_t initval = 0);

}  // namespace ckptwatch
