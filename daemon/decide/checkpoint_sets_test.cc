// CheckpointSets on real directories: an HF sharded save judged when its index is closed; a
// DCP save that never wrote .metadata judged after checkpoint_settle; one directory never
// judged twice at once; a judgement it no longer waits for is refused.
#include "decide/checkpoint_sets.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/unique_fd.h"

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
    config_.settle = 1s;
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel, std::ios::binary) << text;
  }
  // What the thread-pool port does: each request judged on the disk, then accepted.
  std::vector<CheckpointEvent> JudgeDue(CheckpointSets& sets, SetTracker::Clock::time_point now) {
    std::vector<CheckpointEvent> out;
    UniqueFd root(open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    for (const SetJudgeRequest& r : sets.TakeDue(now, &next_id_)) {
      EXPECT_EQ(r.root_path, root_);
      for (CheckpointEvent& e : JudgeSetDirectory(root.get(), r.root_path, r.relative, r.level))
        out.push_back(std::move(e));
      EXPECT_TRUE(sets.Accept(r, now));
    }
    return out;
  }
  std::string root_;
  WatchConfig config_;
  std::uint64_t next_id_ = 0;
};

TEST_F(CheckpointSetsTest, ASetIsJudgedAtItsCommitPointOnce) {
  CheckpointSets sets("w", root_, config_);
  const SetTracker::Clock::time_point t0{};
  Write(
      "m/model.safetensors.index.json",
      R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  sets.OnWrite("m/model-00001-of-00002.safetensors", t0, true);  // its bytes never reached the disk
  sets.OnWrite("m/model.safetensors.index.json", t0 + 1s, true);
  ASSERT_EQ(sets.NextDeadline(), t0 + 1s);
  const auto events = JudgeDue(sets, t0 + 1s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].level, LogLevel::kError);
  EXPECT_EQ(events[0].layout, "hf_sharded");
  EXPECT_EQ(events[0].verdict, "incomplete");
  EXPECT_EQ(events[0].cause, "missing_member");
  EXPECT_TRUE(JudgeDue(sets, t0 + 1h).empty());
}

TEST_F(CheckpointSetsTest, WithoutItsCommitPointASaveFailsAfterCheckpointSettle) {
  CheckpointSets sets("w", root_, config_);
  const SetTracker::Clock::time_point t0{};
  Write("step9/__0_0.distcp", "x");
  sets.OnWrite("step9/__0_0.distcp", t0, true);
  EXPECT_TRUE(JudgeDue(sets, t0 + 29s).empty());
  const auto events = JudgeDue(sets, t0 + 30s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].layout, "dcp");
  EXPECT_EQ(events[0].cause, "no_commit_point");
}

TEST_F(CheckpointSetsTest, ADirectoryRenamedIntoPlaceIsJudgedAfterTheFileSettle) {
  CheckpointSets sets("w", root_, config_);
  const SetTracker::Clock::time_point t0{};
  sets.OnArrived("checkpoint-5", t0);
  EXPECT_EQ(sets.NextDeadline(), t0 + 1s);
  // A directory made empty and then written: its writes decide, not its arrival.
  sets.OnArrived("step3", t0);
  sets.OnWrite("step3/__0_0.distcp", t0 + 500ms, false);
  const auto due = sets.TakeDue(t0 + 1s, &next_id_);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].relative, "checkpoint-5");
}

TEST_F(CheckpointSetsTest, ADirectoryIsNeverJudgedTwiceAtOnce) {
  CheckpointSets sets("w", root_, config_);
  const SetTracker::Clock::time_point t0{};
  sets.OnWrite("s/.metadata", t0, true);
  const auto first = sets.TakeDue(t0, &next_id_);
  ASSERT_EQ(first.size(), 1u);
  sets.OnWrite("s/.metadata", t0 + 1s, true);  // the next save's, while the first is judged
  EXPECT_TRUE(sets.TakeDue(t0 + 1s, &next_id_).empty());
  EXPECT_EQ(sets.in_flight(), 1u);
  EXPECT_TRUE(sets.Accept(first[0], t0 + 2s));
  EXPECT_FALSE(sets.Accept(first[0], t0 + 2s)) << "a result is taken once";
  const auto second = sets.TakeDue(t0 + 2s, &next_id_);
  ASSERT_EQ(second.size(), 1u) << "judged again once the first is back";
  EXPECT_NE(second[0].id, first[0].id);
  CheckpointSets restarted("w", root_, config_);  // a reload restarted the watch
  EXPECT_FALSE(restarted.Accept(second[0], t0 + 3s));
}

// The verifier failed one rank's file (the pipeline knows); `latest` names that save: the set is
// incomplete and the pointer says resume would load a partial checkpoint.
TEST_F(CheckpointSetsTest, AMemberTheVerifierFailedBreaksItsSetAndThePointerNamingIt) {
  Write("gs20/mp_rank_00_model_states.pt", "m");
  Write("gs20/zero_pp_rank_0_mp_rank_00_optim_states.pt", "o");
  Write("latest", "gs20");
  UniqueFd root(open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  SetJudgeRequest request{1, "w", root_, "", Level::kStructure, {}};
  auto pointer_of = [](const std::vector<CheckpointEvent>& events) {
    for (const CheckpointEvent& e : events)
      if (e.pointer) return e;
    return CheckpointEvent{};
  };
  EXPECT_EQ(pointer_of(JudgeSetDirectory(root.get(), request)).verdict, "ok");
  request.failed_members[root_ + "/gs20/zero_pp_rank_0_mp_rank_00_optim_states.pt"] =
      MemberCheck{Verdict::kTruncated, "cut short"};
  const CheckpointEvent p = pointer_of(JudgeSetDirectory(root.get(), request));
  EXPECT_EQ(p.verdict, "incomplete");
  EXPECT_EQ(p.level, LogLevel::kWarn);
  EXPECT_NE(p.msg.find("zero_pp_rank_0_mp_rank_00_optim_states.pt"), std::string::npos) << p.msg;
}

}  // namespace
}  // namespace ckptwatch
