#include "verify/nonfinite_scan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace ckptwatch {
namespace {

template <typename T>
std::vector<std::uint8_t> BytesOf(const std::vector<T>& values) {
  std::vector<std::uint8_t> out(values.size() * sizeof(T));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

TEST(NonfiniteScan, CountsNanAndInfInFloat32) {
  const float inf = std::numeric_limits<float>::infinity();
  auto data = BytesOf<float>({1.0f, NAN, -inf, 0.0f, inf, -0.0f, 1e38f, 1e-45f});
  EXPECT_EQ(CountNonfinite({4, 23, 8}, data.data(), 8), 3u);
}

TEST(NonfiniteScan, CountsNanInFloat64) {
  auto data = BytesOf<double>({1.0, std::nan(""), 2.0, -std::numeric_limits<double>::infinity()});
  EXPECT_EQ(CountNonfinite({8, 52, 11}, data.data(), 4), 2u);
}

TEST(NonfiniteScan, CountsHalfPrecisionInf) {
  // float16: 0x7c00 = +inf, 0x7e00 = NaN, 0x3c00 = 1.0, 0x7bff = max finite.
  auto data = BytesOf<std::uint16_t>({0x7c00, 0x7e00, 0x3c00, 0x7bff});
  EXPECT_EQ(CountNonfinite({2, 10, 5}, data.data(), 4), 2u);
}

TEST(NonfiniteScan, GenericPathHandlesExtendedPrecision) {
  // x87 80-bit long double in 16 bytes: exponent at bits 64..78.
  std::vector<std::uint8_t> data(32, 0);
  data[8] = 0xff;
  data[9] = 0x7f;  // element 0: exponent all ones
  data[16 + 8] = 0xff;
  data[16 + 9] = 0x3f;  // element 1: finite
  EXPECT_EQ(CountNonfinite({16, 64, 15}, data.data(), 2), 1u);
}

TEST(NonfiniteScan, NonsenseLayoutCountsNothing) {
  std::vector<std::uint8_t> data(8, 0xff);
  EXPECT_EQ(CountNonfinite({4, 30, 8}, data.data(), 2), 0u);
}


// ---- Properties over every layout and sizes that cross the kernels' blocks ----

// The vectorised kernels count in blocks: 2^15 elements for 16-bit floats (so a 16-bit lane
// count cannot wrap), 2^24 for 32- and 64-bit ones. A scan that stops at, restarts in or
// overflows on a block boundary is what these properties are for.
constexpr std::size_t kBlock16 = std::size_t{1} << 15;
constexpr std::size_t kBlockWide = std::size_t{1} << 24;

struct NamedLayout {
  const char* name;
  FloatLayout layout;
  std::vector<std::size_t> sizes;
};

std::vector<NamedLayout> Layouts() {
  const std::vector<std::size_t> small = {1, 2, 7, 8, 9, 31, 32, 33, 1000};
  auto with = [&](std::vector<std::size_t> more) {
    std::vector<std::size_t> all = small;
    all.insert(all.end(), more.begin(), more.end());
    return all;
  };
  return {
      {"float16", {2, 10, 5}, with({kBlock16 - 1, kBlock16, kBlock16 + 1, 100000, 3 * kBlock16 + 5})},
      {"bfloat16", {2, 7, 8}, with({kBlock16 - 1, kBlock16, kBlock16 + 1, 100000, 3 * kBlock16 + 5})},
      {"float32", {4, 23, 8}, with({100000, kBlockWide + 1})},
      {"float64", {8, 52, 11}, with({100000, kBlockWide + 3})},
      // x87 extended precision in 16 bytes: the generic bit-by-bit path.
      {"x87 long double", {16, 64, 15}, small},
  };
}

// One element's exponent bits set to all ones (NaN or ±Inf, by `rng`) or made finite.
class Elements {
 public:
  Elements(const FloatLayout& layout, std::size_t count, std::mt19937_64& rng)
      : layout_(layout), bytes_(layout.size * count), rng_(rng) {
    for (std::size_t i = 0; i < bytes_.size(); i += 8) {
      const std::uint64_t r = rng_();
      std::memcpy(bytes_.data() + i, &r, std::min<std::size_t>(8, bytes_.size() - i));
    }
    for (std::size_t i = 0; i < count; ++i) MakeFinite(i);
  }
  const std::uint8_t* data() const { return bytes_.data(); }

  void MakeFinite(std::size_t i) {
    // Random bits unless the exponent is all ones: then one random exponent bit is cleared.
    if (ExponentAllOnes(i)) SetBit(i, layout_.exponent_pos + rng_() % layout_.exponent_bits, false);
  }
  void MakeNonfinite(std::size_t i) {
    for (std::size_t b = 0; b < layout_.exponent_bits; ++b) SetBit(i, layout_.exponent_pos + b, true);
  }

 private:
  bool ExponentAllOnes(std::size_t i) const {
    for (std::size_t b = 0; b < layout_.exponent_bits; ++b) {
      const std::size_t bit = layout_.exponent_pos + b;
      if (!((bytes_[i * layout_.size + bit / 8] >> (bit % 8)) & 1u)) return false;
    }
    return true;
  }
  void SetBit(std::size_t i, std::size_t bit, bool on) {
    std::uint8_t& byte = bytes_[i * layout_.size + bit / 8];
    byte = on ? (byte | (1u << (bit % 8))) : (byte & ~(1u << (bit % 8)));
  }

  FloatLayout layout_;
  std::vector<std::uint8_t> bytes_;
  std::mt19937_64& rng_;
};

TEST(NonfiniteScan, FindsOneNonfiniteAtTheFirstLastAndARandomElementOfEverySize) {
  std::mt19937_64 rng(20240607);
  for (const NamedLayout& l : Layouts()) {
    for (std::size_t count : l.sizes) {
      SCOPED_TRACE(::testing::Message() << l.name << ", " << count << " elements");
      Elements elements(l.layout, count, rng);
      ASSERT_EQ(CountNonfinite(l.layout, elements.data(), count), 0u);
      for (std::size_t at : {std::size_t{0}, count - 1, static_cast<std::size_t>(rng() % count)}) {
        SCOPED_TRACE(::testing::Message() << "nonfinite at element " << at);
        elements.MakeNonfinite(at);
        EXPECT_EQ(CountNonfinite(l.layout, elements.data(), count), 1u);
        // Only `count` elements are looked at: one past the end is not counted.
        if (at == count - 1) {
          EXPECT_EQ(CountNonfinite(l.layout, elements.data(), count - 1), 0u);
        }
        elements.MakeFinite(at);
      }
    }
  }
}

TEST(NonfiniteScan, CountsEveryElementWhenAllAreNonfiniteAcrossBlocks) {
  // 16-bit lanes count at most one block: an all-NaN array longer than a block must not wrap.
  std::mt19937_64 rng(7);
  for (const NamedLayout& l : Layouts()) {
    const std::size_t count = l.layout.size == 2 ? 3 * kBlock16 + 5 : 100000;
    SCOPED_TRACE(::testing::Message() << l.name << ", " << count << " elements");
    Elements elements(l.layout, count, rng);
    for (std::size_t i = 0; i < count; ++i) elements.MakeNonfinite(i);
    EXPECT_EQ(CountNonfinite(l.layout, elements.data(), count), count);
  }
}

TEST(NonfiniteScan, CountsNonfiniteAtEveryBlockBoundary) {
  std::mt19937_64 rng(11);
  const NamedLayout f16 = Layouts()[0];
  const std::size_t count = 3 * kBlock16 + 5;
  Elements elements(f16.layout, count, rng);
  std::size_t placed = 0;
  for (std::size_t block = 1; block * kBlock16 <= count; ++block) {
    elements.MakeNonfinite(block * kBlock16 - 1);
    elements.MakeNonfinite(block * kBlock16);
    placed += 2;
  }
  EXPECT_EQ(CountNonfinite(f16.layout, elements.data(), count), placed);
}

// Big-endian files hold the same values with their bytes reversed: every size and path counts
// them as its little-endian twin does, and reading them little-endian would count nothing.
TEST(NonfiniteScan, BigEndianDataCountsAsItsLittleEndianTwin) {
  struct Case {
    FloatLayout layout;
    std::vector<std::uint8_t> little;  // one finite element, then NaN, then +Inf
  };
  const Case cases[] = {
      {{2, 10, 5}, {0x00, 0x3c, 0x00, 0x7e, 0x00, 0x7c}},
      {{4, 23, 8}, BytesOf<float>({1.0f, NAN, std::numeric_limits<float>::infinity()})},
      {{8, 52, 11}, BytesOf<double>({1.0, NAN, std::numeric_limits<double>::infinity()})},
      {{16, 64, 15}, std::vector<std::uint8_t>(48, 0)},  // the generic path
  };
  for (Case c : cases) {
    SCOPED_TRACE(::testing::Message() << c.layout.size << "-byte elements");
    if (c.layout.size == 16) {
      for (int e : {1, 2}) c.little[16 * e + 8] = 0xff, c.little[16 * e + 9] = 0x7f;
      c.little[9] = 0x3f;
    }
    std::vector<std::uint8_t> big = c.little;
    for (std::size_t at = 0; at < big.size(); at += c.layout.size)
      std::reverse(big.begin() + at, big.begin() + at + c.layout.size);
    EXPECT_EQ(CountNonfinite(c.layout, c.little.data(), 3), 2u);
    FloatLayout big_layout = c.layout;
    big_layout.big_endian = true;
    EXPECT_EQ(CountNonfinite(big_layout, big.data(), 3), 2u);
    EXPECT_EQ(CountNonfinite(c.layout, big.data(), 3), 0u);
  }
}

}  // namespace
}  // namespace ckptwatch
