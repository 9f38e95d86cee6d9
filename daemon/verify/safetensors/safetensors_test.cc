#include "verify/safetensors/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "verify/format_test_bytes.h"

namespace ckptwatch {
namespace {

using namespace std::string_literals;

ReadAt Over(const std::string& bytes) {
  return [&bytes](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (offset >= bytes.size()) return 0;
    n = std::min<std::size_t>(n, bytes.size() - offset);
    std::memcpy(buf, bytes.data() + offset, n);
    return static_cast<long>(n);
  };
}

std::string File(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

SafetensorsCheck CheckSafetensors(const std::string& bytes, Level level = Level::kStructure) {
  return CheckSafetensors(Over(bytes), bytes.size(), level);
}

const std::string kTwo =
    R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
    R"("a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}})";

TEST(Safetensors, TiledTensorsAreOkWithTheirCounts) {
  const SafetensorsCheck c = CheckSafetensors(File(kTwo, std::string(12, '\0')), Level::kFull);
  EXPECT_EQ(c.verdict, Verdict::kOk) << c.reason;
  EXPECT_EQ(c.tensors, 2u);
  EXPECT_EQ(c.parameters, 5u);
  EXPECT_EQ(c.metadata_entries, 1u);
  EXPECT_EQ(c.nonfinite, 0u);
}

TEST(Safetensors, DataCutShortIsTruncatedAtEveryLevelWithTheReadersError) {
  for (Level level : {Level::kHeader, Level::kStructure, Level::kFull}) {
    const SafetensorsCheck c = CheckSafetensors(File(kTwo, std::string(11, '\0')), level);
    EXPECT_EQ(c.verdict, Verdict::kTruncated);
    EXPECT_NE(c.reason.find("MetadataIncompleteBuffer"), std::string::npos) << c.reason;
    EXPECT_EQ(c.expected_bytes, 8 + kTwo.size() + 12);
  }
}

TEST(Safetensors, HeaderCutShortIsTruncated) {
  const std::string whole = File(kTwo, std::string(12, '\0'));
  EXPECT_EQ(CheckSafetensors(whole.substr(0, 40)).verdict, Verdict::kTruncated);
  EXPECT_EQ(CheckSafetensors(whole.substr(0, 5)).verdict, Verdict::kTruncated);
}

TEST(Safetensors, GapsOverlapsAndWrongSizesAreCorrupt) {
  const std::string gap = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}})";
  const std::string overlap = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  const std::string size = R"({"a":{"dtype":"I32","shape":[2],"data_offsets":[0,4]}})";
  EXPECT_EQ(CheckSafetensors(File(gap, "1234")).verdict, Verdict::kCorrupt);
  EXPECT_EQ(CheckSafetensors(File(overlap, "12")).verdict, Verdict::kCorrupt);
  EXPECT_EQ(CheckSafetensors(File(size, "1234")).verdict, Verdict::kCorrupt);
  EXPECT_EQ(CheckSafetensors(File(size, "12345")).verdict, Verdict::kCorrupt);  // a byte too many
  const std::string cut = R"({"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_EQ(CheckSafetensors(File(cut, "1234")).verdict, Verdict::kTruncated);
}

TEST(Safetensors, BytesAfterTheLastTensorAreCorrupt) {
  EXPECT_EQ(CheckSafetensors(File(kTwo, std::string(13, '\0'))).verdict, Verdict::kCorrupt);
  EXPECT_EQ(CheckSafetensors(File(kTwo, std::string(13, '\0')), Level::kHeader).verdict, Verdict::kCorrupt);
}

TEST(Safetensors, MalformedHeadersAreCorrupt) {
  for (const char* header : {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})",  // unclosed
                             R"({"a":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}})",    // dtype
                             R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})",
                             R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})",
                             R"({"a":{"dtype":"F32","shape":[1]}})",
                             R"({"__metadata__":{"k":1}})", R"({"__metadata__":[]})",
                             R"({"a":[1]})", R"({"a":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}})",
                             R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                             R"( {})"}) {
    EXPECT_EQ(CheckSafetensors(File(header, "1234")).verdict, Verdict::kCorrupt) << header;
  }
}

TEST(Safetensors, WhatWritersInTheWildDoIsOk) {
  EXPECT_EQ(CheckSafetensors(File("{}      ", "")).verdict, Verdict::kOk);  // no tensors, padded
  EXPECT_EQ(CheckSafetensors(File(R"({"__metadata__":null})", "")).verdict, Verdict::kOk);
  EXPECT_EQ(CheckSafetensors(File(R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8],"extra":"ignored"}})",
                       std::string(8, '\0'))).verdict,
            Verdict::kOk);
}

TEST(Safetensors, AHeaderLongerThanTheReaderAcceptsIsCorrupt) {
  std::string bytes = File("{}", "");
  bytes[0] = 0;
  bytes[1] = static_cast<char>(0xe2);
  bytes[2] = static_cast<char>(0xf5);
  bytes[3] = 0x05;  // 100,000,256
  EXPECT_EQ(CheckSafetensors(bytes).verdict, Verdict::kCorrupt);
}

TEST(Safetensors, NanAndInfAreCountedPerFloatDtypeAtFullOnly) {
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},)"
      R"("e":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[6,8]},"u":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}})";
  // F16 +inf (0x7c00) and 1.0; BF16 NaN (0x7fc0); E4M3 NaN (0x7f) and 0x7e (448, finite); U8 0xff.
  const std::string data("\x00\x7c\x00\x3c\xc0\x7f\x7f\x7e\xff", 9);
  EXPECT_EQ(CheckSafetensors(File(header, data), Level::kStructure).verdict, Verdict::kOk);
  const SafetensorsCheck c = CheckSafetensors(File(header, data), Level::kFull);
  EXPECT_EQ(c.verdict, Verdict::kNonfinite);
  EXPECT_EQ(c.nonfinite, 3u);
  EXPECT_NE(c.reason.find("the first in h"), std::string::npos) << c.reason;
}

TEST(Safetensors, ShapesThatOverflowAreCorrupt) {
  const std::string header = R"({"a":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}})";
  EXPECT_EQ(CheckSafetensors(File(header, "")).verdict, Verdict::kCorrupt);
}

TEST(Safetensors, EachHeaderBranchGivesItsVerdictAndReason) {
  const std::string one = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string too_long = File("{}", "");
  too_long[5] = 1;  // 2^40 + 2 bytes
  std::string cut_header = File(one, "1234");
  cut_header.resize(20);
  const testing::VerdictCase cases[] = {
      {"under 8 bytes", "\x02\0\0\0"s, Level::kHeader, Verdict::kTruncated,
       "shorter than the safetensors header length"},
      {"length over the limit", too_long, Level::kHeader, Verdict::kCorrupt, "(HeaderTooLarge)"},
      {"header cut", cut_header, Level::kHeader, Verdict::kTruncated,
       "inside its 54-byte safetensors header"},
      {"not an object", File("[1]", ""), Level::kHeader, Verdict::kCorrupt,
       "does not start with '{' (InvalidHeaderStart)"},
      {"bad JSON", File("{\"a\":", ""), Level::kHeader, Verdict::kCorrupt,
       "(InvalidHeaderDeserialization)"},
      {"shape overflows",
       File(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
            "1234"),
       Level::kHeader, Verdict::kCorrupt, "tensor a's shape overflows (ValidationOverflow)"},
      {"data cut", File(one, "12"), Level::kHeader, Verdict::kTruncated,
       "places tensor data up to 66"},
      {"data long at header", File(one, "12345"), Level::kHeader, Verdict::kCorrupt,
       "file is 1 bytes longer than its safetensors header accounts for"},
      {"data long at structure", File(one, "12345"), Level::kStructure, Verdict::kCorrupt,
       "file is 1 bytes longer than its safetensors tensors account for"},
      {"gap", File(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", "12"),
       Level::kStructure, Verdict::kCorrupt,
       "tensor a occupies bytes [1, 2) of the data but the previous tensor ends at 0"},
      {"half a byte", File(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", "12"),
       Level::kStructure, Verdict::kCorrupt,
       "tensor a does not fill whole bytes (MisalignedSlice)"},
      {"wrong size", File(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "1234"),
       Level::kStructure, Verdict::kCorrupt,
       "tensor a is F32 with 2 elements (8 bytes) but its range holds 4 (TensorInvalidInfo)"},
      {"ok", File(one, "1234"), Level::kFull, Verdict::kOk, ""},
      {"NaN at full", File(one, "\0\0\xc0\x7f"s), Level::kFull, Verdict::kNonfinite,
       "1 NaN/Inf value"},
      {"NaN unread at structure", File(one, "\0\0\xc0\x7f"s), Level::kStructure, Verdict::kOk, ""},
  };
  testing::ExpectVerdicts(
      cases, [](const std::string& bytes, Level level) { return CheckSafetensors(bytes, level); });
}

}  // namespace
}  // namespace ckptwatch
