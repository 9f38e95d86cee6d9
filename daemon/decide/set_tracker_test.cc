// SetTracker in virtual time: a set is judged at its commit point's close, or after
// checkpoint_settle of quiet with every member closed — never while a member is open.
#include "decide/set_tracker.h"

#include <gtest/gtest.h>

#include "verify/sets/set_names.h"

namespace ckptwatch {
namespace {

using namespace std::chrono_literals;
using Clock = SetTracker::Clock;

TEST(SetNames, RolesAndDirectories) {
  EXPECT_EQ(SetRoleOf("run/step100/.metadata"), SetRole::kCommitPoint);
  EXPECT_EQ(SetRoleOf("run/step100/__0_0.distcp"), SetRole::kMember);
  EXPECT_EQ(SetRoleOf("m/model.ckpt-5.index"), SetRole::kCommitPoint);
  EXPECT_EQ(SetRoleOf("m/model.ckpt-5.data-00000-of-00002"), SetRole::kMember);
  EXPECT_EQ(SetRoleOf("out/checkpoint-5/trainer_state.json"), SetRole::kCommitPoint);
  EXPECT_EQ(SetRoleOf("out/checkpoint-5/model.safetensors"), SetRole::kMember);
  EXPECT_EQ(SetRoleOf("out/model.safetensors"), SetRole::kNone);  // a single-file checkpoint
  EXPECT_EQ(SetRoleOf("out/model-00001-of-00003.safetensors"), SetRole::kMember);
  EXPECT_EQ(SetRoleOf("out/model.safetensors.index.json"), SetRole::kCommitPoint);
  EXPECT_EQ(SetRoleOf("ds/global_step7/zero_pp_rank_3_mp_rank_00_optim_states.pt"),
            SetRole::kMember);
  EXPECT_EQ(SetRoleOf("ds/latest"), SetRole::kCommitPoint);
  EXPECT_EQ(SetRoleOf("runs/epoch_3.h5"), SetRole::kNone);
  EXPECT_EQ(SetDirectoryOf("sm/1/variables/variables.index"), "sm/1");
  EXPECT_EQ(SetDirectoryOf("mg/iter_0000100/mp_rank_01_002/model_optim_rng.pt"), "mg/iter_0000100");
  EXPECT_EQ(SetDirectoryOf("ds/latest"), "ds");
  EXPECT_EQ(SetDirectoryOf(".metadata"), "");
}

TEST(SetTracker, JudgesAtTheCommitPointsClose) {
  SetTracker t(30s);
  const Clock::time_point t0{};
  EXPECT_TRUE(t.OnWrite("step1/__0_0.distcp", t0, false));
  EXPECT_TRUE(t.OnWrite("step1/__0_0.distcp", t0 + 1s, true));
  EXPECT_TRUE(t.OnWrite("step1/.metadata", t0 + 2s, true));
  EXPECT_EQ(t.NextDeadline(), t0 + 2s);
  EXPECT_EQ(t.TakeDue(t0 + 2s), std::vector<std::string>{"step1"});
  EXPECT_TRUE(t.TakeDue(t0 + 60s).empty());  // once
  EXPECT_EQ(t.waiting(), 0u);
}

TEST(SetTracker, WithoutACommitPointWaitsForQuietAndEveryMemberClosed) {
  SetTracker t(30s);
  const Clock::time_point t0{};
  t.OnWrite("ds/global_step7/mp_rank_00_model_states.pt", t0, true);
  t.OnWrite("ds/global_step7/zero_pp_rank_0_mp_rank_00_optim_states.pt", t0 + 5s,
            false);                // still open
  EXPECT_FALSE(t.NextDeadline());  // waits for the close, not the clock
  EXPECT_TRUE(t.TakeDue(t0 + 10min).empty());
  t.OnWrite("ds/global_step7/zero_pp_rank_0_mp_rank_00_optim_states.pt", t0 + 11min, true);
  EXPECT_EQ(t.NextDeadline(), t0 + 11min + 30s);
  EXPECT_TRUE(t.TakeDue(t0 + 11min + 29s).empty());
  EXPECT_EQ(t.TakeDue(t0 + 11min + 30s), std::vector<std::string>{"ds/global_step7"});
}

TEST(SetTracker, AMemberDeletedWhileOpenNoLongerHoldsItsSet) {
  SetTracker t(1s);
  const Clock::time_point t0{};
  t.OnWrite("a/__0_1.distcp", t0, false);
  t.OnGone("a/__0_1.distcp");
  EXPECT_EQ(t.TakeDue(t0 + 1s), std::vector<std::string>{"a"});
}

TEST(SetTracker, IgnoresFilesOfNoSetAndBoundsWhatWaits) {
  SetTracker t(1s);
  const Clock::time_point t0{};
  EXPECT_FALSE(t.OnWrite("runs/epoch_1.h5", t0, true));
  EXPECT_EQ(t.waiting(), 0u);
  for (std::size_t i = 0; i < SetTracker::kMaxDirs + 5; ++i)
    t.OnWrite(std::to_string(i) + "/.metadata", t0, false);
  EXPECT_EQ(t.waiting(), SetTracker::kMaxDirs);
  EXPECT_EQ(t.dropped(), 5u);
}

}  // namespace
}  // namespace ckptwatch
