// Keras 3 sharded weights judged from directories built here (the index as ShardedH5IOStore
// writes it; the shards' HDF5 content is the per-file verifier's, tested end to end in
// tests/sets_test.py with h5py-written shards).
#include "verify/sets/keras_sharded_set.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ckptwatch {
namespace {

namespace fs = std::filesystem;

class KerasSharded : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ckptwatch-keras-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text = "x") {
    std::ofstream(root_ + "/" + rel) << text;
  }
  std::vector<SetReport> Sets(const SetCheckOptions& options = {}) {
    std::string err;
    std::optional<SetDir> dir = SetDir::Open(root_, &err);
    EXPECT_TRUE(dir) << err;
    if (!dir) return {};
    return FindKerasSharded(*dir, dir->List(), options);
  }
  static constexpr const char* kIndex =
      R"({"metadata": {"total_size": 4096.0}, "weight_map": {)"
      R"("/layers/dense/vars": "model_00000.weights.h5",)"
      R"("/layers/dense_1/vars": ["model_00000.weights.h5", "model_00001.weights.h5"],)"
      R"("/optimizer/vars": "model_00001.weights.h5"}})";
  std::string root_;
};

TEST_F(KerasSharded, AWholeSaveIsOkWithEveryShardAMember) {
  Write("model_00000.weights.h5");
  Write("model_00001.weights.h5");
  Write("model.weights.json", kIndex);
  auto sets = Sets();
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].layout, "keras_sharded");
  EXPECT_EQ(sets[0].verdict, SetVerdict::kOk) << sets[0].reason;
  EXPECT_EQ(sets[0].members, (std::vector<std::string>{"model.weights.json", "model_00000.weights.h5",
                                                        "model_00001.weights.h5"}));
}

TEST_F(KerasSharded, AShardTheIndexNamesMissingIsIncompleteAndNamed) {
  Write("model_00000.weights.h5");
  Write("model.weights.json", kIndex);
  auto sets = Sets();
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].verdict, SetVerdict::kIncomplete);
  EXPECT_EQ(sets[0].missing, (std::vector<std::string>{"model_00001.weights.h5"}));
  EXPECT_NE(sets[0].reason.find("1 of the 2 shards"), std::string::npos) << sets[0].reason;
}

TEST_F(KerasSharded, AnIndexCutShortIsIncomplete) {
  Write("model_00000.weights.h5");
  Write("model.weights.json", std::string(kIndex).substr(0, 60));
  auto sets = Sets();
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].verdict, SetVerdict::kIncomplete);
  EXPECT_NE(sets[0].reason.find("not whole JSON"), std::string::npos) << sets[0].reason;
}

TEST_F(KerasSharded, AShardNameLeavingTheDirectoryIsInconsistentAndNotOpened) {
  Write("model.weights.json", R"({"weight_map": {"/layers/dense/vars": "../../etc/shadow"}})");
  auto sets = Sets();
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].verdict, SetVerdict::kInconsistent);
  EXPECT_NE(sets[0].reason.find("outside its directory"), std::string::npos) << sets[0].reason;
  EXPECT_EQ(sets[0].members, (std::vector<std::string>{"model.weights.json"}));
}

TEST_F(KerasSharded, AShardThatIsASymlinkIsNotFollowed) {
  Write("model_00000.weights.h5");
  ASSERT_EQ(symlink("/etc/passwd", (root_ + "/model_00001.weights.h5").c_str()), 0);
  Write("model.weights.json", kIndex);
  auto sets = Sets();
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].verdict, SetVerdict::kInconsistent);
  EXPECT_EQ(sets[0].at_fault, (std::vector<std::string>{"model_00001.weights.h5"}));
}

TEST_F(KerasSharded, AWeightMapEntryThatIsNoShardNameIsInconsistent) {
  Write("model.weights.json", R"({"weight_map": {"/layers/dense/vars": ["a.weights.h5", 7]}})");
  auto sets = Sets();
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].verdict, SetVerdict::kInconsistent);
}

TEST_F(KerasSharded, AShardThePerFileVerifierFindsTruncatedMakesTheSaveIncomplete) {
  Write("model_00000.weights.h5", "good");
  Write("model_00001.weights.h5", "cut");
  Write("model.weights.json", kIndex);
  SetCheckOptions options;
  options.verify_member = [](int fd, const std::string&) {
    char first = 0;
    EXPECT_EQ(pread(fd, &first, 1, 0), 1);
    return first == 'c' ? MemberCheck{Verdict::kTruncated, "file is truncated"} : MemberCheck{};
  };
  auto sets = Sets(options);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].verdict, SetVerdict::kIncomplete);
  EXPECT_EQ(sets[0].at_fault, (std::vector<std::string>{"model_00001.weights.h5"}));
}

TEST_F(KerasSharded, OnlyWeightsJsonNamesAreIndexes) {
  EXPECT_TRUE(IsKerasShardedIndexName("model.weights.json"));
  EXPECT_FALSE(IsKerasShardedIndexName(".weights.json"));
  EXPECT_FALSE(IsKerasShardedIndexName("model.safetensors.index.json"));
  EXPECT_FALSE(IsKerasShardedIndexName("config.json"));
}

}  // namespace
}  // namespace ckptwatch
