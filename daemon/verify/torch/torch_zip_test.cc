// CheckTorchZip on archives built byte by byte: each verdict branch, at the levels that reach it.
#include <gtest/gtest.h>

#include "verify/format_test_bytes.h"
#include "verify/torch/torch_checkpoint.h"

namespace ckptwatch {
namespace {

using namespace std::string_literals;
using testing::Floats;
using testing::OverBytes;
using testing::TorchZipFiles;
using testing::With;
using testing::Without;
using testing::ZipArchive;
using testing::ZipFile;

TorchCheck CheckZip(const std::vector<ZipFile>& files, Level level) {
  const std::string bytes = ZipArchive(files);
  return CheckTorchZip(OverBytes(bytes), bytes.size(), level);
}

TEST(TorchZip, ArchivesTorchSavesAtEveryLoadableProtocolAreOkAtEveryLevel) {
  for (int protocol = 1; protocol <= 5; ++protocol) {
    for (Level level : {Level::kHeader, Level::kStructure, Level::kFull}) {
      const TorchCheck c = CheckZip(TorchZipFiles(protocol), level);
      EXPECT_EQ(c.verdict, Verdict::kOk) << protocol << " " << LevelName(level) << ": " << c.reason;
      if (level == Level::kHeader) continue;
      EXPECT_EQ(c.tensors, 1u) << protocol;
      EXPECT_EQ(c.parameters, 3u) << protocol;
    }
  }
}

TEST(TorchZip, ProtocolZeroIsCorruptAsTorchLoadFailsOnItsTextPersistentIds) {
  // torch.save(pickle_protocol=0) writes str(tuple) as the persistent id; torch.load asserts.
  const TorchCheck c = CheckZip(TorchZipFiles(0), Level::kStructure);
  EXPECT_EQ(c.verdict, Verdict::kCorrupt);
  EXPECT_NE(
      c.reason.find("archive/data.pkl names its storages by text persistent ids "
                    "(torch.save with pickle_protocol=0): torch.load fails with AssertionError"),
      std::string::npos)
      << c.reason;
}

struct VersionCase {
  const char* record;
  bool loads;
  const char* reason;  // A part of the reason when it does not load.
};

// What torch 1.13's torch.load did with each record (std::stoull, then 1 <= v <= 10).
const VersionCase kVersions[] = {
    {"3\n", true, ""},
    {"1", true, ""},
    {"10\n", true, ""},
    {"0003", true, ""},
    {" \t\n7", true, ""},
    {"+3", true, ""},
    {"3abc", true, ""},
    {"999\n", false, "says 999, but torch.load reads versions 1 to 10 (\"the maximum supported"},
    {"11", false, "says 11, but torch.load reads versions 1 to 10"},
    {"0\n", false,
     "says 0, but torch.load reads versions 1 to 10 (\"the minimum supported version "
     "for reading is 1\")"},
    {"-0", false, "says 0"},
    {"-1", false, "holds a negative number"},
    {"abc", false, "holds no number"},
    {"", false, "holds no number"},
    {" + 3", false, "holds no number"},
    {"99999999999999999999999", false, "holds a number too large to parse"},
};

TEST(TorchZip, TheVersionRecordIsJudgedAsTorchLoadParsesIt) {
  for (const VersionCase& v : kVersions) {
    for (Level level : {Level::kHeader, Level::kStructure}) {
      const TorchCheck c = CheckZip(With(TorchZipFiles(), "archive/version", v.record), level);
      EXPECT_EQ(c.verdict, v.loads ? Verdict::kOk : Verdict::kCorrupt) << "'" << v.record << "'";
      EXPECT_NE(c.reason.find(v.reason), std::string::npos) << "'" << v.record << "': " << c.reason;
      if (!v.loads) {
        EXPECT_NE(c.reason.find("archive/version"), std::string::npos) << c.reason;
      }
    }
  }
}

TEST(TorchZip, DataVersionIsReadBeforeVersionAndADeflatedRecordIsInflated) {
  auto files = With(TorchZipFiles(), "archive/.data/version", "999\n");
  EXPECT_EQ(CheckZip(files, Level::kHeader).verdict, Verdict::kCorrupt);
  files = With(With(TorchZipFiles(), "archive/.data/version", "3\n"), "archive/version", "999\n");
  EXPECT_EQ(CheckZip(files, Level::kHeader).verdict, Verdict::kOk);
  files = Without(TorchZipFiles(), "archive/version");
  files.push_back({"archive/version", std::string(100000, ' ') + "999", true});
  const TorchCheck deflated = CheckZip(files, Level::kHeader);
  EXPECT_EQ(deflated.verdict, Verdict::kCorrupt);
  EXPECT_NE(deflated.reason.find("holds no number in its first 64 KiB"), std::string::npos)
      << deflated.reason;
  files.back().data = std::string(1000, ' ') + "9";
  EXPECT_EQ(CheckZip(files, Level::kHeader).verdict, Verdict::kOk);
}

TEST(TorchZip, EachDamageHasItsVerdictAndReason) {
  const std::string nan = Floats(3, 0x7fc00000);
  const testing::VerdictCase cases[] = {
      {"no local header at the start", "\x5f\x18\x4a\xa6"s + ZipArchive(TorchZipFiles()).substr(4),
       Level::kHeader, Verdict::kCorrupt, "does not begin with a zip local header"},
      {"no data.pkl", ZipArchive(Without(TorchZipFiles(), "archive/data.pkl")), Level::kHeader,
       Verdict::kCorrupt, "zip archive has no data.pkl"},
      {"no version", ZipArchive(Without(TorchZipFiles(), "archive/version")), Level::kHeader,
       Verdict::kCorrupt, "torch archive has no archive/version record"},
      {"storage missing", ZipArchive(Without(TorchZipFiles(), "archive/data/0")), Level::kStructure,
       Verdict::kCorrupt, "archive/data.pkl names storage 0 but the archive has no archive/data/0"},
      {"storage short", ZipArchive(With(TorchZipFiles(), "archive/data/0", Floats(2))),
       Level::kStructure, Verdict::kCorrupt,
       "archive/data/0 holds 8 bytes but archive/data.pkl declares 3 elements of FloatStorage"},
      {"storage unreferenced", ZipArchive(With(TorchZipFiles(), "archive/data/7", Floats(1))),
       Level::kStructure, Verdict::kCorrupt,
       "archive/data/7 is not referenced by archive/data.pkl"},
      {"pickle cut", ZipArchive(With(TorchZipFiles(), "archive/data.pkl", "\x80\x02}q\x00"s)),
       Level::kStructure, Verdict::kCorrupt, "archive/data.pkl ends at offset 51 before its STOP"},
      {"NaN at full", ZipArchive(TorchZipFiles(2, nan)), Level::kFull, Verdict::kNonfinite,
       "3 NaN/Inf values in model weights, the first in archive/data/0"},
      {"NaN little-endian", ZipArchive(With(TorchZipFiles(2, nan), "archive/byteorder", "little")),
       Level::kFull, Verdict::kNonfinite, "3 NaN/Inf values"},
      {"NaN not read at structure", ZipArchive(TorchZipFiles(2, nan)), Level::kStructure,
       Verdict::kOk, ""},
  };
  testing::ExpectVerdicts(cases, [](const std::string& bytes, Level level) {
    return CheckTorchZip(OverBytes(bytes), bytes.size(), level);
  });
}

TEST(TorchZip, BigEndianStoragesAreNotScannedAndSaySo) {
  const TorchCheck c = CheckZip(
      With(TorchZipFiles(2, Floats(3, 0x7fc00000)), "archive/byteorder", "big"), Level::kFull);
  EXPECT_EQ(c.verdict, Verdict::kOk) << c.reason;
  EXPECT_EQ(c.note, "big-endian storages: NaN/Inf not counted");
}

TEST(TorchZip, ACorruptedStorageFailsItsCrcAtFullOnly) {
  std::string bytes = ZipArchive(TorchZipFiles());
  const std::size_t at = bytes.find(Floats(3));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] ^= 0x40;
  EXPECT_EQ(CheckTorchZip(OverBytes(bytes), bytes.size(), Level::kStructure).verdict, Verdict::kOk);
  const TorchCheck c = CheckTorchZip(OverBytes(bytes), bytes.size(), Level::kFull);
  EXPECT_EQ(c.verdict, Verdict::kCorrupt);
  EXPECT_NE(c.reason.find("entry archive/data/0 has CRC-32"), std::string::npos) << c.reason;
}

TEST(TorchZip, AMemoCPythonCannotAllocateIsNotOk) {
  // The state dict with its first BINPUT widened to LONG_BINPUT 0x7fffffff.
  std::string pickle = testing::StateDictPickle(2, "0", 3, false);
  const std::size_t put = pickle.find(std::string("}q\x00", 3));
  ASSERT_NE(put, std::string::npos);
  pickle.replace(put + 1, 2, std::string("r\xff\xff\xff\x7f", 5));
  const TorchCheck c = CheckZip(With(TorchZipFiles(), "archive/data.pkl", pickle), Level::kStructure);
  EXPECT_EQ(c.verdict, Verdict::kCorrupt);
  EXPECT_NE(c.reason.find("puts memo entry 2147483647"), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find("32 GiB"), std::string::npos) << c.reason;
}

}  // namespace
}  // namespace ckptwatch
