#include "verify/verifier.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/unique_fd.h"

namespace ckptwatch {
namespace {

UniqueFd MemFile(const std::string& bytes) {
  UniqueFd fd(memfd_create("verifier_test", MFD_CLOEXEC));
  EXPECT_EQ(write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  return fd;
}

VerifyOptions AtLevel(Level level) {
  VerifyOptions options;
  options.level = level;
  return options;
}

TEST(FirstLook, SettlesAnEmptyFileAtTheLevelAsked) {
  UniqueFd fd = MemFile("");
  auto result = FirstLook(fd.get(), "model.h5", AtLevel(Level::kFull));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->verdict, Verdict::kEmpty);
  EXPECT_EQ(result->level, Level::kFull);
}

TEST(FirstLook, SettlesATextFileThatIsNoCheckpoint) {
  UniqueFd fd = MemFile("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12345\n");
  auto result = FirstLook(fd.get(), "model.safetensors", AtLevel(Level::kStructure));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->verdict, Verdict::kNotCheckpoint);
  EXPECT_EQ(result->level, Level::kStructure);
}

TEST(FirstLook, ReportsFullAsStructureWhenTheFileIsOverTheFullLimit) {
  UniqueFd fd = MemFile("plain text, no checkpoint at all");
  VerifyOptions options = AtLevel(Level::kFull);
  options.full_max_bytes = 4;
  auto result = FirstLook(fd.get(), "model.h5", options);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->level, Level::kStructure);
}

TEST(FirstLook, LeavesAHealthyHdf5HeaderToTheChild) {
  // A whole superblock v0 of an empty file would be ok at header: structure needs libhdf5.
  std::string file = "\x89HDF\r\n\x1a\n";
  file.resize(4096, '\0');
  UniqueFd fd = MemFile(file);
  auto header = FirstLook(fd.get(), "model.h5", AtLevel(Level::kHeader));
  ASSERT_TRUE(header);  // level header: always settled here
  if (header->verdict == Verdict::kOk) {
    EXPECT_FALSE(FirstLook(fd.get(), "model.h5", AtLevel(Level::kStructure)));
  }
}

TEST(FirstLook, LeavesAKerasArchiveToTheChild) {
  UniqueFd fd = MemFile(std::string("PK\x03\x04", 4) + std::string(60, '\0'));
  EXPECT_FALSE(FirstLook(fd.get(), "model.keras", AtLevel(Level::kHeader)));
  EXPECT_FALSE(FirstLook(fd.get(), "model.keras", AtLevel(Level::kStructure)));
}

// Every verdict the daemon gives without a child is the one the child would have given: same
// verdict, same reason, same level, for every file of both shared corpora.
TEST(FirstLookCorpus, SettlesOnlyWhatTheChildWouldSayAlike) {
  const char* corpus = std::getenv("CKPTWATCH_CORPUS");
#ifdef CKPTWATCH_TEST_CORPUS
  if (corpus == nullptr) corpus = CKPTWATCH_TEST_CORPUS;
#endif
  if (corpus == nullptr) GTEST_SKIP() << "CKPTWATCH_CORPUS is not set";
  namespace fs = std::filesystem;
  int files = 0, settled = 0;
  for (const std::string& root : {std::string(corpus), std::string(corpus) + "-formats"}) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file() || it->path().extension() == ".md" ||
          it->path().extension() == ".tsv")
        continue;
      const std::string path = it->path().string();
      SCOPED_TRACE(path);
      UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
      ASSERT_TRUE(fd.valid());
      ++files;
      for (Level level : {Level::kStructure, Level::kFull}) {
        auto first = FirstLook(fd.get(), path, AtLevel(level));
        if (!first) continue;
        ++settled;
        // Safe in this process: a settled file never reaches libhdf5 or libzip.
        VerifyResult child = VerifyOpenFile(fd.get(), path, AtLevel(level));
        EXPECT_EQ(VerdictName(first->verdict), VerdictName(child.verdict));
        EXPECT_EQ(first->reason, child.reason);
        EXPECT_EQ(LevelName(first->level), LevelName(child.level));
        EXPECT_EQ(first->format, child.format);
      }
    }
  }
  EXPECT_GT(files, 20);
  EXPECT_GT(settled, 4);
}

}  // namespace
}  // namespace ckptwatch
