#include "outcome.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace ckptwatch {
namespace {

// An ok Keras 1 file whose config uses TimeDistributedDense, as the verifier child reports it.
VerifyResult Keras1TimeDistributedDense() {
  VerifyResult r;
  r.path = "/ckpt/epoch_001.h5";
  r.verdict = Verdict::kOk;
  r.format = "hdf5";
  r.reason = "HDF5 superblock v0, 8 datasets, 64 parameters, Keras 1.2.2 full_model";
  r.keras = {"1.2.2", "tensorflow", "full_model", {}, {"Sequential", "TimeDistributedDense"}, {}, 0,
             0};
  return r;
}

std::string FieldValue(const Outcome& out, std::string_view key) {
  const auto it =
      std::ranges::find_if(out.fields, [&](const LogField& f) { return f.first == key; });
  return it == out.fields.end() ? "<absent>" : it->second;
}

TEST(Outcome, LoadFieldJudgesAgainstTheWatchTarget) {
  WatchConfig watch;
  watch.load_target_keras = "2.15";
  OutcomeInput input;
  input.load_target = WatchLoadTarget(watch);
  const Outcome out = DecideOutcome(Keras1TimeDistributedDense(), input);
  EXPECT_EQ(FieldValue(out, "load"), "incompatible");
  EXPECT_EQ(out.load, LoadOutcome::kIncompatible);
  EXPECT_TRUE(out.cause.empty()) << "a warning only, without fail_on_incompatible";
  EXPECT_NE(out.message.find("load with keras=2.15: incompatible"), std::string::npos)
      << out.message;
  EXPECT_NE(out.message.find("TimeDistributedDense"), std::string::npos);
}

TEST(Outcome, FailOnIncompatibleMakesItAFailedSave) {
  OutcomeInput input;
  input.load_target.keras = std::pair{2, 15};
  input.fail_on_incompatible = true;
  const Outcome out = DecideOutcome(Keras1TimeDistributedDense(), input);
  EXPECT_EQ(out.cause, "load_incompatible");
  EXPECT_EQ(FieldValue(out, "cause"), "load_incompatible");
  EXPECT_EQ(out.level, LogLevel::kError);
}

TEST(Outcome, NoTargetLoadsAndAFailedVerdictHasNoLoadField) {
  const Outcome loads = DecideOutcome(Keras1TimeDistributedDense(), {});
  EXPECT_EQ(FieldValue(loads, "load"), "loads");
  VerifyResult cut = Keras1TimeDistributedDense();
  cut.verdict = Verdict::kTruncated;
  const Outcome failed = DecideOutcome(cut, {});
  EXPECT_EQ(FieldValue(failed, "load"), "<absent>");
  EXPECT_FALSE(failed.load);
}

}  // namespace
}  // namespace ckptwatch
