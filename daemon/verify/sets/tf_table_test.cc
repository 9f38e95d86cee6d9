// The table, Snappy and bundle readers on hostile bytes: every prefix and every bit flip of
// real .index files from the sets corpus reads back or fails with a sentence, never crashes;
// Snappy streams that reach outside their output are refused.
#include "verify/sets/tf_table.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "verify/byte_reader.h"
#include "verify/sets/crc32c.h"
#include "verify/sets/set_test_util.h"
#include "verify/sets/snappy_block.h"

namespace ckptwatch {
namespace {

using testing::SetsCorpus;

std::vector<std::uint8_t> Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool ReadTable(const std::vector<std::uint8_t>& bytes, std::vector<TableEntry>* entries,
               std::string* err) {
  ReadAt read_at = SpanReadAt(bytes);
  return ReadTable(read_at, bytes.size(), entries, err);
}

TEST(Crc32c, MatchesTheKnownVectors) {
  // RFC 3720 B.4: 32 bytes of zeros, and "123456789".
  std::vector<std::uint8_t> zeros(32, 0);
  EXPECT_EQ(Crc32cExtend(0, zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(Crc32cExtend(0, "123456789", 9), 0xe3069283u);
  EXPECT_EQ(Crc32cExtend(Crc32cExtend(0, "1234", 4), "56789", 5), 0xe3069283u);
}

TEST(Snappy, DecodesLiteralsAndOverlappingCopies) {
  // "abcabcabcab": literal "abc", then a copy of 8 bytes from offset 3 (1-byte-offset form).
  const std::uint8_t stream[] = {
      11, (3 - 1) << 2, 'a', 'b', 'c', static_cast<std::uint8_t>(((8 - 4) << 2) | 1), 3};
  std::vector<std::uint8_t> out;
  std::string err;
  ASSERT_TRUE(SnappyUncompress(stream, sizeof stream, 1 << 20, &out, &err)) << err;
  EXPECT_EQ(std::string(out.begin(), out.end()), "abcabcabcab");
}

TEST(Snappy, RefusesWhatReachesOutsideItsOutput) {
  std::vector<std::uint8_t> out;
  std::string err;
  const std::uint8_t before_start[] = {8, 0, 'a', static_cast<std::uint8_t>(((8 - 4) << 2) | 1), 5};
  EXPECT_FALSE(SnappyUncompress(before_start, sizeof before_start, 1 << 20, &out, &err));
  const std::uint8_t zero_offset[] = {8, 0, 'a', static_cast<std::uint8_t>(((7 - 4) << 2) | 1), 0};
  EXPECT_FALSE(SnappyUncompress(zero_offset, sizeof zero_offset, 1 << 20, &out, &err));
  const std::uint8_t too_long[] = {2, (3 - 1) << 2, 'a', 'b', 'c'};
  EXPECT_FALSE(SnappyUncompress(too_long, sizeof too_long, 1 << 20, &out, &err));
  const std::uint8_t short_of_length[] = {9, 0, 'a'};
  EXPECT_FALSE(SnappyUncompress(short_of_length, sizeof short_of_length, 1 << 20, &out, &err));
  const std::uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  EXPECT_FALSE(SnappyUncompress(huge, sizeof huge, 1 << 20, &out, &err));
  EXPECT_NE(err.find("too large"), std::string::npos);
}

class CorpusIndex : public ::testing::TestWithParam<const char*> {};

TEST_P(CorpusIndex, ReadsBackAndSurvivesEveryPrefixAndBitFlip) {
  const std::string path = SetsCorpus() + "/" + GetParam();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no corpus-sets file " << path;
  const std::vector<std::uint8_t> bytes = Slurp(path);
  std::vector<TableEntry> entries;
  std::string err;
  ASSERT_TRUE(ReadTable(bytes, &entries, &err)) << err;
  ASSERT_GE(entries.size(), 2u);
  EXPECT_EQ(entries[0].key, "");  // the BundleHeaderProto sorts first
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::vector<std::uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<long>(n));
    err.clear();
    EXPECT_FALSE(ReadTable(prefix, &entries, &err)) << n;  // the footer is gone or misplaced
    EXPECT_FALSE(err.empty());
  }
  const std::size_t footer = bytes.size() - 48;
  std::size_t pos = footer;
  std::uint64_t meta_offset = 0, meta_size = 0;
  ASSERT_TRUE(ReadVarint(bytes.data(), bytes.size(), &pos, &meta_offset));
  ASSERT_TRUE(ReadVarint(bytes.data(), bytes.size(), &pos, &meta_size));
  auto unread = [&](std::size_t byte) {  // the metaindex block (no filters: empty) and the footer
    return byte >= footer || (byte >= meta_offset && byte < meta_offset + meta_size + 5);
  };
  for (std::size_t i = 0; i < bytes.size() * 8; ++i) {
    std::vector<std::uint8_t> flipped = bytes;
    flipped[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
    err.clear();
    const bool read = ReadTable(flipped, &entries, &err);
    // Every block read (and its trailer) is under a CRC-32C: a flip there is always caught. The
    // metaindex block, its handle and the footer's padding are never read for entries.
    EXPECT_TRUE(!read || unread(i / 8)) << "bit " << i;
    EXPECT_TRUE(read || !err.empty()) << "bit " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Sets, CorpusIndex,
    ::testing::Values("valid/tf_ckpt_houseprices/model.ckpt.index",
                      "valid/tf_savedmodel_half_plus_two_tf2_cpu/variables/variables.index",
                      "valid/tf_savedmodel_half_plus_two_cpu/variables/variables.index",
                      "valid/tf_v1_checkpoint_bad_half_plus_two/export"));

}  // namespace
}  // namespace ckptwatch
