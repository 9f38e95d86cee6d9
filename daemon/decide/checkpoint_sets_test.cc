// CheckpointSets on real directories: an HF sharded save judged when its index is closed; a
// DCP save that never wrote .metadata judged after checkpoint_settle, a failed save.
#include "decide/checkpoint_sets.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "decide/pipeline_fakes.h"

namespace ckptwatch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class CheckpointSetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ckptwatch-csets-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    config_.checkpoint_settle = 30s;
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel, std::ios::binary) << text;
  }
  std::string root_;
  WatchConfig config_;
  testing::FakeReporter reporter_;
};

TEST_F(CheckpointSetsTest, ASetIsJudgedAtItsCommitPointOnce) {
  CheckpointSets sets("w", root_, config_, reporter_);
  const SetTracker::Clock::time_point t0{};
  Write(
      "m/model.safetensors.index.json",
      R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  sets.OnWrite("m/model-00001-of-00002.safetensors", t0, true);  // its bytes never reached the disk
  sets.OnWrite("m/model.safetensors.index.json", t0 + 1s, true);
  ASSERT_EQ(sets.NextDeadline(), t0 + 1s);
  sets.OnDue(t0 + 1s);
  ASSERT_EQ(reporter_.lines.size(), 1u);
  const auto& line = reporter_.lines[0];
  EXPECT_EQ(line.event, LogEvent::kCheckpoint);
  EXPECT_EQ(line.level, LogLevel::kError);
  EXPECT_EQ(line.fields.at("watch"), "w");
  EXPECT_EQ(line.fields.at("layout"), "hf_sharded");
  EXPECT_EQ(line.fields.at("verdict"), "incomplete");
  EXPECT_EQ(line.fields.at("cause"), "missing_member");
  EXPECT_EQ(reporter_.failures["w/missing_member"], 1);
  sets.OnDue(t0 + 1h);
  EXPECT_EQ(reporter_.lines.size(), 1u);
}

TEST_F(CheckpointSetsTest, WithoutItsCommitPointASaveFailsAfterCheckpointSettle) {
  CheckpointSets sets("w", root_, config_, reporter_);
  const SetTracker::Clock::time_point t0{};
  Write("step9/__0_0.distcp", "x");
  sets.OnWrite("step9/__0_0.distcp", t0, true);
  sets.OnDue(t0 + 29s);
  EXPECT_TRUE(reporter_.lines.empty());
  sets.OnDue(t0 + 30s);
  ASSERT_EQ(reporter_.lines.size(), 1u);
  EXPECT_EQ(reporter_.lines[0].fields.at("layout"), "dcp");
  EXPECT_EQ(reporter_.lines[0].fields.at("cause"), "no_commit_point");
  EXPECT_EQ(reporter_.lines[0].fields.at("missing"), ".metadata");
}

}  // namespace
}  // namespace ckptwatch
