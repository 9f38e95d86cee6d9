// Orbax step directories built here as Orbax lays them out (its compatibility checkpoints:
// composite and direct, v0 and v1), whole and with what Orbax itself calls critical missing.
#include "verify/sets/orbax_set.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ckptwatch {
namespace {

namespace fs = std::filesystem;

class OrbaxSteps : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ckptwatch-orbax-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text = "x") {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel) << text;
  }
  // A PyTree item under `at` ("" or "state/") written by `processes` processes.
  void PyTree(const std::string& at, int processes = 1) {
    Write(at + "_METADATA", "{}");
    Write(at + "_sharding", "{}");
    Write(at + "manifest.ocdbt", "manifest");
    Write(at + "d/6b3188c296298811d6ef3175926acfd5", "data");
    for (int p = 0; p < processes; ++p) {
      const std::string proc = at + "ocdbt.process_" + std::to_string(p) + "/";
      Write(at + "array_metadatas/process_" + std::to_string(p), "{}");
      Write(proc + "manifest.ocdbt", "manifest");
      Write(proc + "d/1ac9df021160aa2bb8f9aaf7fa1cde88", "data");
    }
  }
  void Composite(const std::string& step, int processes = 1) {
    Write(step + "/_CHECKPOINT_METADATA",
          R"({"item_handlers": {"state": "PyTreeHandler", "metadata": "JsonHandler"},)"
          R"( "commit_timestamp_nsecs": 1778718403065544708})");
    Write(step + "/orbax.checkpoint", "");
    Write(step + "/metadata/data.json", R"({"step": 7})");
    PyTree(step + "/state/", processes);
  }
  SetReport Check(const std::string& step) {
    std::string err;
    std::optional<SetDir> dir = SetDir::Open(root_ + "/" + step, &err);
    EXPECT_TRUE(dir) << err;
    const std::vector<std::string> names = dir->List();
    EXPECT_TRUE(LooksLikeOrbax(names));
    return CheckOrbax(*dir, step, names);
  }
  std::string root_;
};

TEST_F(OrbaxSteps, ACompositeStepIsOk) {
  Composite("7", 4);
  const SetReport r = Check("7");
  EXPECT_EQ(r.layout, "orbax");
  EXPECT_EQ(r.step, 7);
  EXPECT_EQ(r.verdict, SetVerdict::kOk) << r.reason;
  EXPECT_NE(std::find(r.members.begin(), r.members.end(), "state/ocdbt.process_3/manifest.ocdbt"),
            r.members.end());
}

TEST_F(OrbaxSteps, ADirectStepWithoutTreeMetadataIsOk) {
  PyTree("step_100/");
  Write("step_100/_CHECKPOINT_METADATA", "{}");
  fs::remove(root_ + "/step_100/_METADATA");  // Orbax loads it (pytree_checkpointable_missing_metadata)
  const SetReport r = Check("step_100");
  EXPECT_EQ(r.step, 100);
  EXPECT_EQ(r.verdict, SetVerdict::kOk) << r.reason;
}

TEST_F(OrbaxSteps, AnItemWithoutItsManifestIsIncomplete) {
  Composite("7");
  fs::remove(root_ + "/7/state/manifest.ocdbt");
  const SetReport r = Check("7");
  EXPECT_EQ(r.verdict, SetVerdict::kIncomplete);
  EXPECT_EQ(r.missing, (std::vector<std::string>{"state/manifest.ocdbt"}));
}

TEST_F(OrbaxSteps, AnItemWithoutItsDataDirectoryIsIncomplete) {
  Composite("7");
  fs::remove_all(root_ + "/7/state/d");
  const SetReport r = Check("7");
  EXPECT_EQ(r.verdict, SetVerdict::kIncomplete);
  EXPECT_EQ(r.missing, (std::vector<std::string>{"state/d/"}));
}

TEST_F(OrbaxSteps, AProcessMissingFromTheMiddleIsIncompleteAndNamed) {
  Composite("7", 4);
  fs::remove_all(root_ + "/7/state/ocdbt.process_2");
  const SetReport r = Check("7");
  EXPECT_EQ(r.verdict, SetVerdict::kIncomplete);
  EXPECT_EQ(r.missing, (std::vector<std::string>{"state/ocdbt.process_2/"}));
}

TEST_F(OrbaxSteps, AProcessStoreWithoutItsManifestIsIncomplete) {
  Composite("7", 2);
  fs::remove(root_ + "/7/state/ocdbt.process_1/manifest.ocdbt");
  const SetReport r = Check("7");
  EXPECT_EQ(r.verdict, SetVerdict::kIncomplete);
  EXPECT_EQ(r.missing, (std::vector<std::string>{"state/ocdbt.process_1/manifest.ocdbt"}));
}

TEST_F(OrbaxSteps, StepMetadataCutShortIsIncomplete) {
  Composite("7");
  Write("7/_CHECKPOINT_METADATA", R"({"item_handlers": {"sta)");
  const SetReport r = Check("7");
  EXPECT_EQ(r.verdict, SetVerdict::kIncomplete);
  EXPECT_EQ(r.at_fault, (std::vector<std::string>{"_CHECKPOINT_METADATA"}));
}

TEST_F(OrbaxSteps, AManifestThatIsASymlinkIsNotFollowed) {
  Composite("7");
  fs::remove(root_ + "/7/state/manifest.ocdbt");
  ASSERT_EQ(symlink("/etc/shadow", (root_ + "/7/state/manifest.ocdbt").c_str()), 0);
  const SetReport r = Check("7");
  EXPECT_EQ(r.verdict, SetVerdict::kInconsistent);
  EXPECT_EQ(r.at_fault, (std::vector<std::string>{"state/manifest.ocdbt"}));
}

TEST_F(OrbaxSteps, OnlyOrbaxsOwnFilesMakeADirectoryAStep) {
  EXPECT_TRUE(LooksLikeOrbax({"_CHECKPOINT_METADATA", "state"}));
  EXPECT_TRUE(LooksLikeOrbax({"metadata", "orbax.checkpoint"}));
  EXPECT_FALSE(LooksLikeOrbax({"manifest.ocdbt", "model.safetensors"}));
}

}  // namespace
}  // namespace ckptwatch
