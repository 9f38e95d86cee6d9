// Counting NaN and Inf in raw floating-point data of any IEEE-like layout.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ckptwatch {

/// Where the exponent sits in a floating-point element (HDF5's H5Tget_fields, plus the type's
/// bit offset): bits are counted from the least significant, whatever the byte order.
struct FloatLayout {
  std::size_t size = 4;           ///< Bytes per element.
  std::size_t exponent_pos = 23;  ///< First exponent bit, counted from bit 0.
  std::size_t exponent_bits = 8;
  bool big_endian = false;  ///< Bytes stored most significant first.
};

/// How many of the `count` elements at `data` are NaN or ±Inf (exponent
/// bits all ones). float16/bfloat16/float32/float64 take vectorisable paths.
std::uint64_t CountNonfinite(const FloatLayout& layout, const std::uint8_t* data, std::size_t count);

/// How many of the `count` bytes at `data` have every bit of `mask` set: the NaN/Inf test of
/// one-byte floats (F8_E5M2 0x7c: exponent all ones; F8_E4M3FN 0x7f: its only NaN; E8M0 0xff).
std::uint64_t CountBytesWithMask(const std::uint8_t* data, std::size_t count, std::uint8_t mask);

}  // namespace ckptwatch
