#include "verify/hdf5/raw_scan.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

namespace ckptwatch {
namespace {

const FloatLayout kF16{2, 10, 5};
const FloatLayout kF32{4, 23, 8};
const FloatLayout kF64{8, 52, 11};
const FloatLayout kF32Big{4, 23, 8, true};

// A file in memory: reads are counted, and bytes from `fail_from` on fail with EIO.
struct MemoryFile {
  std::vector<std::uint8_t> bytes;
  std::uint64_t fail_from = UINT64_MAX;
  int reads = 0;
  ReadAt Reader() {
    return [this](std::uint64_t offset, void* buf, std::size_t n) -> long {
      ++reads;
      if (offset + n > fail_from) return (errno = EIO, -1);
      if (offset >= bytes.size()) return 0;
      n = std::min<std::size_t>(n, bytes.size() - offset);
      std::memcpy(buf, bytes.data() + offset, n);
      return static_cast<long>(n);
    };
  }
};

// Random bytes, so about one element in 256 (float32) to 32 (float16) has its exponent all ones.
std::vector<std::uint8_t> RandomBytes(std::size_t n, std::mt19937_64& rng) {
  std::vector<std::uint8_t> out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng() % 4 == 0 ? 0xff : rng());
  return out;
}

std::uint64_t Expected(const MemoryFile& file, const RawRun& run, const FloatLayout& layout) {
  if (run.offset >= file.bytes.size()) return 0;
  const std::uint64_t present = std::min<std::uint64_t>(run.bytes, file.bytes.size() - run.offset);
  return CountNonfinite(layout, file.bytes.data() + run.offset, present / layout.size);
}

TEST(RawScan, CountsEveryRunAsAWholeScanWouldForAnyBlockSizeAndLayout) {
  std::mt19937_64 rng(7);
  const std::vector<FloatLayout> layouts = {kF16, kF32, kF64, kF32Big};
  for (int trial = 0; trial < 200; ++trial) {
    MemoryFile file{RandomBytes(200000 + rng() % 100000, rng)};
    std::vector<RawRun> runs;
    // Runs at any offset (not element- or page-aligned), some overlapping, in random order.
    for (int r = 0; r < 12; ++r) {
      const auto owner = static_cast<std::uint32_t>(rng() % layouts.size());
      const std::uint64_t element = layouts[owner].size;
      const std::uint64_t offset = rng() % (file.bytes.size() - 64);
      const std::uint64_t elements = 1 + rng() % ((file.bytes.size() - offset) / element);
      runs.push_back({offset, elements * element, owner});
    }
    const std::size_t block = 8192 + (rng() % 8) * 1000 + rng() % 7;
    SCOPED_TRACE(::testing::Message() << "trial " << trial << ", block " << block);
    const RawScanCounts counts = ScanRawRuns(runs, layouts, file.Reader(), block);
    std::vector<std::uint64_t> expected(layouts.size(), 0);
    for (const RawRun& run : runs) expected[run.owner] += Expected(file, run, layouts[run.owner]);
    EXPECT_EQ(counts.nonfinite, expected);
    EXPECT_EQ(counts.read_failed, std::vector<bool>(layouts.size(), false));
  }
}

TEST(RawScan, ReadsAdjacentRunsOnceInLargeBlocks) {
  // 64 datasets of 64 KiB back to back with 100-byte headers between them, listed in reverse:
  // one pass in file order, a read per 1 MiB block.
  MemoryFile file{std::vector<std::uint8_t>(64 * (65536 + 100), 0)};
  std::vector<RawRun> runs;
  for (std::uint32_t d = 64; d-- > 0;) runs.push_back({d * (65536u + 100) + 100, 65536, d});
  file.bytes[63 * (65536 + 100) + 100 + 65532 + 3] = 0x7f;  // the last float of the last run:
  file.bytes[63 * (65536 + 100) + 100 + 65532 + 2] = 0x80;  // +Inf
  const std::vector<FloatLayout> layouts(64, kF32);
  const RawScanCounts counts = ScanRawRuns(runs, layouts, file.Reader(), 1 << 20);
  EXPECT_EQ(counts.nonfinite[63], 1u);
  EXPECT_EQ(counts.nonfinite[0], 0u);
  EXPECT_LE(file.reads, static_cast<int>(file.bytes.size() / (1 << 20)) + 1);
}

TEST(RawScan, BytesPastTheEndOfTheFileCountAsZeros) {
  std::vector<std::uint8_t> nan(4096 * 4);
  for (std::size_t i = 0; i < nan.size(); i += 4) std::memcpy(&nan[i], "\x00\x00\xc0\x7f", 4);
  MemoryFile file{nan};
  const std::vector<FloatLayout> layouts = {kF32};
  // Half the run lies past the end: only the half inside counts, and nothing fails.
  const RawScanCounts counts = ScanRawRuns({{8192, 16384, 0}}, layouts, file.Reader(), 8192);
  EXPECT_EQ(counts.nonfinite[0], 2048u);
  EXPECT_FALSE(counts.read_failed[0]);
}

TEST(RawScan, AFailedReadMarksItsOwnerAndOthersStillCount) {
  std::vector<std::uint8_t> bytes(1 << 20);
  for (std::size_t i = 0; i < bytes.size(); i += 4) std::memcpy(&bytes[i], "\x00\x00\x80\x7f", 4);
  MemoryFile file{bytes, /*fail_from=*/600000};
  const std::vector<FloatLayout> layouts = {kF32, kF32};
  // Far apart, so they are read separately; the second reaches the failing region.
  const RawScanCounts counts =
      ScanRawRuns({{0, 4096, 0}, {500000, 200000, 1}}, layouts, file.Reader(), 65536);
  EXPECT_EQ(counts.nonfinite[0], 1024u);
  EXPECT_FALSE(counts.read_failed[0]);
  EXPECT_TRUE(counts.read_failed[1]);
}

}  // namespace
}  // namespace ckptwatch
