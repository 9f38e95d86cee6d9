// CRC-32C (Castagnoli), as LevelDB-style tables and TensorFlow's tensor bundles store it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ckptwatch {

/// Extends `crc` (0 to start) over `n` bytes at `data`.
std::uint32_t Crc32cExtend(std::uint32_t crc, const void* data, std::size_t n);

/// The masked form stored in LevelDB block trailers and BundleEntryProto.crc32c
/// (leveldb/util/crc32c.h Mask(): a CRC of data that embeds CRCs is itself no weak CRC).
inline std::uint32_t Crc32cMask(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace ckptwatch
