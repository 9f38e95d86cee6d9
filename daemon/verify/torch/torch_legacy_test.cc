// CheckTorchLegacy and the detector on legacy torch.save files built byte by byte at every
// pickle protocol torch.save writes (protocol 4 and 5 put a FRAME after PROTO).
#include <gtest/gtest.h>

#include "verify/format_detect.h"
#include "verify/format_test_bytes.h"
#include "verify/torch/torch_checkpoint.h"

namespace ckptwatch {
namespace {

using testing::Floats;
using testing::LegacyTorchFile;
using testing::OverBytes;

TorchCheck CheckLegacy(const std::string& bytes, Level level) {
  return CheckTorchLegacy(OverBytes(bytes), bytes.size(), level);
}

TEST(TorchLegacy, EveryProtocolIsDetectedAndProtocolsOneToFiveAreOk) {
  for (int protocol = 0; protocol <= 5; ++protocol) {
    const std::string file = LegacyTorchFile(protocol);
    EXPECT_EQ(DetectFormat(OverBytes(file), file.size()), FileFormat::kTorchLegacy) << protocol;
    // Named as torch names it or as a Hugging Face download: the same.
    EXPECT_EQ(DetectFormat(OverBytes(file), file.size(), "pytorch_model.bin"),
              FileFormat::kTorchLegacy)
        << protocol;
    if (protocol == 0) continue;
    for (Level level : {Level::kHeader, Level::kStructure, Level::kFull}) {
      const TorchCheck c = CheckLegacy(file, level);
      EXPECT_EQ(c.verdict, Verdict::kOk) << protocol << " " << LevelName(level) << ": " << c.reason;
      EXPECT_EQ(c.tensors, 1u) << protocol;
      EXPECT_EQ(c.parameters, 3u) << protocol;
    }
  }
}

TEST(TorchLegacy, ProtocolFourAndFiveStartWithAFrame) {
  for (int protocol : {4, 5}) {
    const std::string file = LegacyTorchFile(protocol);
    ASSERT_EQ(static_cast<unsigned char>(file[2]), 0x95u) << protocol;
    EXPECT_EQ(DetectFormat(OverBytes(file), file.size()), FileFormat::kTorchLegacy);
  }
}

TEST(TorchLegacy, ProtocolZeroIsCorruptAsTorchLoadFailsOnItsTextPersistentIds) {
  const TorchCheck c = CheckLegacy(LegacyTorchFile(0), Level::kStructure);
  EXPECT_EQ(c.verdict, Verdict::kCorrupt);
  EXPECT_NE(c.reason.find("the main pickle names its storages by text persistent ids"),
            std::string::npos)
      << c.reason;
}

TEST(TorchLegacy, ACutAnywhereIsTruncatedAndNamesWhere) {
  for (int protocol : {2, 4}) {
    const std::string file = LegacyTorchFile(protocol);
    for (std::size_t cut = 1; cut < file.size(); ++cut) {
      const TorchCheck c = CheckLegacy(file.substr(0, cut), Level::kStructure);
      EXPECT_EQ(c.verdict, Verdict::kTruncated)
          << protocol << " cut at " << cut << ": " << c.reason;
    }
    EXPECT_NE(
        CheckLegacy(file.substr(0, file.size() - 1), Level::kStructure).reason.find("inside storage 94"),
        std::string::npos);
    EXPECT_NE(
        CheckLegacy(file.substr(0, file.size() - 14), Level::kStructure).reason.find("before storage 94"),
        std::string::npos);
  }
}

TEST(TorchLegacy, EachDamageHasItsVerdictAndReason) {
  const std::string good = LegacyTorchFile(2);
  std::string wrong_count = good;
  wrong_count[good.size() - 20] = 4;  // The storage record's element count.
  std::string not_magic = good;
  not_magic[4] ^= 1;
  std::string not_1001 = good;
  not_1001[good.find(std::string("M\xe9\x03", 3)) + 1] = static_cast<char>(0xea);
  const testing::VerdictCase cases[] = {
      {"tail", good + "xx", Level::kStructure, Verdict::kCorrupt,
       "file has 2 bytes after its last storage"},
      {"count", wrong_count, Level::kStructure, Verdict::kCorrupt,
       "storage 94 records 4 elements but the pickle declares 3"},
      {"magic", not_magic, Level::kHeader, Verdict::kCorrupt,
       "the first pickle is not torch's magic number"},
      {"1001", not_1001, Level::kHeader, Verdict::kCorrupt,
       "the protocol version pickle is not 1001"},
      {"NaN", LegacyTorchFile(4, 3, Floats(3, 0x7f800000)), Level::kFull, Verdict::kNonfinite,
       "3 NaN/Inf values in model weights, the first in storage 94"},
      {"NaN unread at structure", LegacyTorchFile(4, 3, Floats(3, 0x7f800000)), Level::kStructure,
       Verdict::kOk, ""},
  };
  testing::ExpectVerdicts(cases, CheckLegacy);
}

}  // namespace
}  // namespace ckptwatch
