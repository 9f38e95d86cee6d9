#include "verify/nonfinite_scan.h"

#include <algorithm>
#include <cstring>

namespace ckptwatch {
namespace {

// Counts in lanes as wide as the data (a 32-bit counter for 32-bit floats)
// so the compiler vectorises the loop; the outer loop keeps each lane count
// far from overflow. 128 bytes of lanes are four AVX2 registers counted
// independently: one accumulator chains every add on the one before (about
// 30 % slower here). Inlined into the AVX2-cloned functions below.
template <typename Word>
[[gnu::always_inline]] inline std::uint64_t CountExponentAllOnes(const std::uint8_t* data,
                                                                 std::size_t count, Word mask) {
  constexpr std::size_t kBlock = std::size_t{1} << (sizeof(Word) >= 4 ? 24 : sizeof(Word) == 2 ? 15 : 7);
  constexpr std::size_t kLanes = 128 / sizeof(Word);
  auto nonfinite = [&](std::size_t i) {
    Word w;
    std::memcpy(&w, data + i * sizeof(Word), sizeof(Word));
    return static_cast<Word>((w & mask) == mask);
  };
  std::uint64_t total = 0;
  for (std::size_t start = 0; start < count; start += kBlock) {
    const std::size_t end = std::min(count, start + kBlock);
    Word lanes[kLanes] = {};
    std::size_t i = start;
    for (; i + kLanes <= end; i += kLanes)
      for (std::size_t j = 0; j < kLanes; ++j) lanes[j] += nonfinite(i + j);
    for (; i < end; ++i) total += nonfinite(i);
    for (Word lane : lanes) total += lane;
  }
  return total;
}

// Cloned for AVX2, which doubles throughput where present. Plain functions, not the template:
// clang (14) does not clone function templates.
__attribute__((target_clones("avx2", "default"))) std::uint64_t Count16(
    const std::uint8_t* data, std::size_t count, std::uint16_t mask) {
  return CountExponentAllOnes(data, count, mask);
}
__attribute__((target_clones("avx2", "default"))) std::uint64_t Count32(
    const std::uint8_t* data, std::size_t count, std::uint32_t mask) {
  return CountExponentAllOnes(data, count, mask);
}
__attribute__((target_clones("avx2", "default"))) std::uint64_t Count64(
    const std::uint8_t* data, std::size_t count, std::uint64_t mask) {
  return CountExponentAllOnes(data, count, mask);
}

__attribute__((target_clones("avx2", "default"))) std::uint64_t Count8(
    const std::uint8_t* data, std::size_t count, std::uint8_t mask) {
  return CountExponentAllOnes(data, count, mask);
}

bool BitSet(const std::uint8_t* element, std::size_t size, bool big_endian, std::size_t bit) {
  const std::size_t byte = big_endian ? size - 1 - bit / 8 : bit / 8;
  return (element[byte] >> (bit % 8)) & 1u;
}

}  // namespace

std::uint64_t CountNonfinite(const FloatLayout& layout, const std::uint8_t* data, std::size_t count) {
  const std::size_t end_bit = layout.exponent_pos + layout.exponent_bits;
  if (layout.exponent_bits == 0 || layout.exponent_bits > 64 || end_bit > layout.size * 8) return 0;
  if (end_bit <= 64 && (layout.size == 2 || layout.size == 4 || layout.size == 8)) {
    const std::uint64_t mask = ((layout.exponent_bits == 64 ? 0 : (std::uint64_t{1} << layout.exponent_bits)) - 1)
                               << layout.exponent_pos;
    // Big-endian data is tested as loaded, against the mask's bytes swapped: no copy.
    const bool swap = layout.big_endian;
    switch (layout.size) {
      case 2: {
        const auto m = static_cast<std::uint16_t>(mask);
        return Count16(data, count, swap ? __builtin_bswap16(m) : m);
      }
      case 4: {
        const auto m = static_cast<std::uint32_t>(mask);
        return Count32(data, count, swap ? __builtin_bswap32(m) : m);
      }
      case 8:
        return Count64(data, count, swap ? __builtin_bswap64(mask) : mask);
    }
  }
  // Other sizes (x87 long double, odd custom floats): bit by bit.
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint8_t* element = data + i * layout.size;
    bool all_ones = true;
    for (std::size_t b = layout.exponent_pos; b < end_bit && all_ones; ++b)
      all_ones = BitSet(element, layout.size, layout.big_endian, b);
    n += all_ones;
  }
  return n;
}

std::uint64_t CountBytesWithMask(const std::uint8_t* data, std::size_t count, std::uint8_t mask) {
  return Count8(data, count, mask);
}

}  // namespace ckptwatch
