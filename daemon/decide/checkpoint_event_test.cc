#include "decide/checkpoint_event.h"

#include <gtest/gtest.h>

namespace ckptwatch {
namespace {

std::string Field(const CheckpointEvent& e, const std::string& key) {
  for (const auto& [k, v] : e.fields)
    if (k == key) return v;
  return "<none>";
}

TEST(CheckpointEvent, OkSetIsInfoWithoutCause) {
  SetReport r;
  r.path = "/ckpt/run1/checkpoint-5";
  r.layout = "hf_trainer";
  r.members = {"model.safetensors", "optimizer.pt", "trainer_state.json"};
  r.step = 5;
  CheckpointEvent e = DescribeSet(r);
  EXPECT_EQ(e.level, LogLevel::kInfo);
  EXPECT_EQ(e.cause, "");
  EXPECT_EQ(Field(e, "members"), "3");
  EXPECT_EQ(Field(e, "step"), "5");
  EXPECT_EQ(Field(e, "cause"), "<none>");
}

TEST(CheckpointEvent, CausesOfBrokenSets) {
  SetReport r;
  r.path = "/ckpt/dcp";
  r.layout = "dcp";
  r.Missing(".metadata", ".metadata is missing");
  EXPECT_EQ(DescribeSet(r).cause, "no_commit_point");
  SetReport t;
  t.Fail(SetVerdict::kIncomplete, "__1_0.distcp is truncated", "__1_0.distcp");
  EXPECT_EQ(DescribeSet(t).cause, "truncated");
  EXPECT_EQ(Field(DescribeSet(t), "at_fault"), "__1_0.distcp");
  SetReport m;
  for (int i = 0; i < 25; ++i) m.Missing("shard" + std::to_string(i), "shards missing");
  CheckpointEvent e = DescribeSet(m);
  EXPECT_EQ((std::pair{e.level, e.cause}),
            (std::pair{LogLevel::kError, std::string("missing_member")}));
  EXPECT_NE(Field(e, "missing").find("... 5 more"), std::string::npos);
  SetReport c;
  c.Fail(SetVerdict::kInconsistent, "optimizer.pt: corrupt: bad zip", "optimizer.pt");
  EXPECT_EQ(DescribeSet(c).cause, "corrupt");
  SetReport n;
  n.Fail(SetVerdict::kIncomplete, "not committed: `latest` still names global_step4");
  EXPECT_EQ(DescribeSet(n).cause, "no_commit_point");
}

}  // namespace
}  // namespace ckptwatch
