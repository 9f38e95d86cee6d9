// Every set of the shared corpus of real multi-file checkpoints (../shared/corpus-sets,
// MANIFEST.tsv) gets the verdict its manifest row expects: complete sets ok, incomplete and
// inconsistent ones so, undetectable ones without a crash — at `structure` and at `full`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "verify/sets/set_finder.h"
#include "verify/sets/set_test_util.h"
#include "verify/verify_open_file.h"

namespace ckptwatch {
namespace {

using testing::SetsCorpus;

// set directory (valid/<set> or malformed/<set>) -> set_expected
std::map<std::string, std::string> ExpectedSets(const std::string& corpus) {
  std::ifstream in(corpus + "/MANIFEST.tsv");
  std::map<std::string, std::string> out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, '\t')) cols.push_back(col);
    if (cols.size() < 13) continue;
    const std::string dir = cols[0].substr(0, cols[0].find('/')) + "/" + cols[11];
    out[dir] = cols[12];
  }
  return out;
}

SetCheckOptions Options(Level level) {
  SetCheckOptions options;
  options.level = level;
  options.verify_member = [](int fd, const std::string& path) {
    VerifyOptions verify;
    verify.level = Level::kHeader;
    VerifyResult result = VerifyOpenFileWith(fd, path, verify, DeepReaders{});
    return MemberCheck{result.verdict, result.reason};
  };
  return options;
}

std::string Describe(const std::vector<SetReport>& reports) {
  std::string text;
  for (const SetReport& r : reports)
    text += r.layout + " " + r.path + ": " + SetVerdictName(r.verdict) + " " + r.reason + "\n";
  return text;
}

class SetCorpus : public ::testing::TestWithParam<Level> {};

TEST_P(SetCorpus, EverySetGetsTheVerdictItsManifestExpects) {
  const std::string corpus = SetsCorpus();
  if (corpus.empty() || !std::filesystem::exists(corpus + "/MANIFEST.tsv"))
    GTEST_SKIP() << "no corpus-sets (CKPTWATCH_SETS_CORPUS)";
  const auto expected = ExpectedSets(corpus);
  ASSERT_GE(expected.size(), 13u);
  for (const auto& [dir, want] : expected) {
    SCOPED_TRACE(dir + " expects " + want);
    std::string err;
    FoundSets found = FindSets(corpus + "/" + dir, false, Options(GetParam()), &err);
    EXPECT_EQ(err, "");
    std::vector<SetReport> reports;
    for (const SetCandidate& s : found.sets) reports.push_back(s.Check());
    JudgePointers(found);  // must not crash on any of them
    if (want == "undetectable") continue;
    ASSERT_FALSE(reports.empty()) << "no set recognised";
    SCOPED_TRACE(Describe(reports));
    if (want == "complete") {
      for (const SetReport& r : reports) EXPECT_TRUE(r.ok());
    } else {
      const SetVerdict v =
          want == "incomplete" ? SetVerdict::kIncomplete : SetVerdict::kInconsistent;
      bool seen = false;
      for (const SetReport& r : reports) seen = seen || r.verdict == v;
      EXPECT_TRUE(seen);
      for (const SetReport& r : reports) {
        EXPECT_TRUE(r.ok() || !r.reason.empty());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, SetCorpus, ::testing::Values(Level::kStructure, Level::kFull));

TEST(SetCorpus, NamesTheMemberAtFault) {
  const std::string corpus = SetsCorpus();
  if (corpus.empty() || !std::filesystem::exists(corpus + "/MANIFEST.tsv"))
    GTEST_SKIP() << "no corpus-sets";
  std::string err;
  auto one = [&](const std::string& dir) {
    FoundSets found = FindSets(corpus + "/" + dir, false, Options(Level::kStructure), &err);
    EXPECT_EQ(found.sets.size(), 1u) << dir;
    return found.sets.empty() ? SetReport{} : found.sets[0].Check();
  };
  SetReport dcp = one("malformed/dcp_gloo_world2__distcp_truncated");
  EXPECT_EQ(dcp.layout, "dcp");
  EXPECT_EQ(dcp.at_fault, std::vector<std::string>{"__1_0.distcp"});
  EXPECT_NE(dcp.reason.find("truncated"), std::string::npos) << dcp.reason;

  SetReport tf = one("malformed/tf_ckpt_houseprices__data_missing");
  EXPECT_EQ(tf.layout, "tf_bundle");
  EXPECT_EQ(tf.missing, std::vector<std::string>{"model.ckpt.data-00000-of-00001"});

  SetReport sm = one("malformed/tf_savedmodel_half_plus_two_cpu__data_truncated");
  EXPECT_EQ(sm.layout, "tf_saved_model");
  EXPECT_EQ(sm.at_fault, std::vector<std::string>{"variables/variables.data-00000-of-00001"})
      << sm.reason;

  SetReport hf = one("malformed/hf_safetensors_index_without_shards_slt");
  EXPECT_EQ(hf.layout, "hf_sharded");
  EXPECT_EQ(hf.missing.size(), 2u);
  EXPECT_NE(hf.reason.find("2 of the 2 shards"), std::string::npos) << hf.reason;

  SetReport meta = one("malformed/dcp_single_process__metadata_missing");
  EXPECT_EQ(meta.missing, std::vector<std::string>{".metadata"});
}

TEST(SetCorpus, AFlippedDataByteIsCaughtAtFullOnly) {
  const std::string corpus = SetsCorpus();
  const std::string from = corpus + "/valid/tf_ckpt_houseprices";
  if (corpus.empty() || !std::filesystem::exists(from)) GTEST_SKIP() << "no corpus-sets";
  char tmpl[] = "/tmp/ckptwatch-flip-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  for (const auto& entry : std::filesystem::directory_iterator(from))
    std::filesystem::copy_file(entry.path(), dir + "/" + entry.path().filename().string());
  const std::string data = dir + "/model.ckpt.data-00000-of-00001";
  std::filesystem::permissions(data, std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::add);
  {
    std::fstream f(data, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100);
    char byte = 0;
    f.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x10);
    f.seekp(100);
    f.write(&byte, 1);
  }
  std::string err;
  FoundSets structure = FindSets(dir, false, Options(Level::kStructure), &err);
  ASSERT_EQ(structure.sets.size(), 1u);
  EXPECT_TRUE(structure.sets[0].Check().ok()) << structure.sets[0].Check().reason;
  FoundSets full = FindSets(dir, false, Options(Level::kFull), &err);
  ASSERT_EQ(full.sets.size(), 1u);
  const SetReport& r = full.sets[0].Check();
  EXPECT_EQ(r.verdict, SetVerdict::kInconsistent);
  EXPECT_NE(r.reason.find("CRC-32C"), std::string::npos) << r.reason;
  EXPECT_EQ(r.at_fault, std::vector<std::string>{"model.ckpt.data-00000-of-00001"});
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ckptwatch
