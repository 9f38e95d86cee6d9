#include "verify/hdf5/read_plan.h"

#include <gtest/gtest.h>

#include <map>

namespace ckptwatch {
namespace {

// Every element must be covered exactly once, whatever the shape.
std::uint64_t CoveredElements(ReadPlan plan, std::size_t rank, std::uint64_t* blocks) {
  std::vector<std::uint64_t> start, count;
  std::uint64_t covered = 0;
  *blocks = 0;
  while (plan.Next(&start, &count)) {
    EXPECT_EQ(start.size(), rank);
    std::uint64_t n = 1;
    for (std::uint64_t c : count) n *= c;
    covered += n;
    ++*blocks;
  }
  return covered;
}

TEST(ReadPlan, CoversContiguousMatrixInBlocksThatFitTheBuffer) {
  ReadPlan plan({1000, 300}, {1, 1}, 4, 64 * 1024, 1 << 20);
  EXPECT_LE(plan.buffer_bytes(), 64u * 1024);
  EXPECT_EQ(plan.block()[1], 300u);  // whole rows first
  std::uint64_t blocks = 0;
  EXPECT_EQ(CoveredElements(plan, 2, &blocks), 300000u);
  EXPECT_GT(blocks, 1u);
}

TEST(ReadPlan, SmallDatasetIsOneBlock) {
  ReadPlan plan({10, 10}, {1, 1}, 8, 1 << 20, 1 << 22);
  std::uint64_t blocks = 0;
  EXPECT_EQ(CoveredElements(plan, 2, &blocks), 100u);
  EXPECT_EQ(blocks, 1u);
}

TEST(ReadPlan, ChunkedBlocksAreWholeChunks) {
  ReadPlan plan({1000, 1000}, {100, 64}, 4, 1 << 20, 1 << 24);
  EXPECT_EQ(plan.block()[0] % 100, 0u);
  std::vector<std::uint64_t> start, count;
  std::uint64_t total = 0;
  while (plan.Next(&start, &count)) {
    EXPECT_EQ(start[0] % 100, 0u);
    EXPECT_EQ(start[1] % 64, 0u);
    total += count[0] * count[1];
  }
  EXPECT_EQ(total, 1000000u);
}

TEST(ReadPlan, OversizedChunkIsReadInSlicesWithinMaxBytes) {
  ReadPlan plan({4096, 4096}, {4096, 4096}, 4, 1 << 20, 8 << 20);  // chunk is 64 MiB
  EXPECT_LE(plan.buffer_bytes(), 8u << 20);
  std::uint64_t blocks = 0;
  EXPECT_EQ(CoveredElements(plan, 2, &blocks), 4096u * 4096u);
}

TEST(ReadPlan, ChunkLargerThanTargetButUnderMaxIsOneBlock) {
  ReadPlan plan({2048, 1024}, {1024, 1024}, 4, 1 << 20, 8 << 20);  // chunk is 4 MiB
  EXPECT_EQ(plan.buffer_bytes(), 4u << 20);
  std::uint64_t blocks = 0;
  EXPECT_EQ(CoveredElements(plan, 2, &blocks), 2048u * 1024u);
  EXPECT_EQ(blocks, 2u);
}

TEST(ReadPlan, ScalarDatasetYieldsOneEmptyBlock) {
  ReadPlan plan({}, {}, 4, 1 << 20, 1 << 20);
  std::vector<std::uint64_t> start, count;
  EXPECT_TRUE(plan.Next(&start, &count));
  EXPECT_TRUE(start.empty());
  EXPECT_FALSE(plan.Next(&start, &count));
}

TEST(ReadPlan, ZeroExtentYieldsNothing) {
  ReadPlan plan({0, 5}, {1, 1}, 4, 1 << 20, 1 << 20);
  std::vector<std::uint64_t> start, count;
  EXPECT_FALSE(plan.Next(&start, &count));
}

TEST(ReadPlan, EdgeBlocksAreClipped) {
  ReadPlan plan({10}, {4}, 1, 4, 4);
  std::vector<std::uint64_t> start, count;
  std::vector<std::uint64_t> counts;
  while (plan.Next(&start, &count)) counts.push_back(count[0]);
  EXPECT_EQ(counts, (std::vector<std::uint64_t>{4, 4, 2}));
}

}  // namespace
}  // namespace ckptwatch
