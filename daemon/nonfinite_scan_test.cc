#include "nonfinite_scan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace ckptwatch {
namespace {

template <typename T>
std::vector<std::uint8_t> Bytes(const std::vector<T>& values) {
  std::vector<std::uint8_t> out(values.size() * sizeof(T));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

TEST(NonfiniteScan, CountsNanAndInfInFloat32) {
  const float inf = std::numeric_limits<float>::infinity();
  auto data = Bytes<float>({1.0f, NAN, -inf, 0.0f, inf, -0.0f, 1e38f, 1e-45f});
  EXPECT_EQ(CountNonfinite({4, 23, 8}, data.data(), 8), 3u);
}

TEST(NonfiniteScan, CountsNanInFloat64) {
  auto data = Bytes<double>({1.0, std::nan(""), 2.0, -std::numeric_limits<double>::infinity()});
  EXPECT_EQ(CountNonfinite({8, 52, 11}, data.data(), 4), 2u);
}

TEST(NonfiniteScan, CountsHalfPrecisionInf) {
  // float16: 0x7c00 = +inf, 0x7e00 = NaN, 0x3c00 = 1.0, 0x7bff = max finite.
  auto data = Bytes<std::uint16_t>({0x7c00, 0x7e00, 0x3c00, 0x7bff});
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

}  // namespace
}  // namespace ckptwatch
