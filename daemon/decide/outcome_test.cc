#include "decide/outcome.h"

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
  r.keras = {
      "1.2.2", "tensorflow",  "full_model", {}, {"Sequential", "TimeDistributedDense"}, {}, 0,
      0,       {"output_dim"}};
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
  EXPECT_EQ(out.level, LogLevel::kWarn) << "grep level=warn must find it";
  ASSERT_TRUE(out.load_problem);
  EXPECT_EQ(out.load_problem->load, "incompatible");
  EXPECT_EQ(out.load_problem->target, "keras=2.15");
  EXPECT_NE(out.load_problem->advice.find("save it again for keras=2.15"), std::string::npos)
      << out.load_problem->advice;
}

TEST(Outcome, ACustomLayerIsALoadProblemAtWarnNamingItsClass) {
  VerifyResult r = Keras1TimeDistributedDense();
  r.keras.version = "2.15.0";
  r.keras.builtin_classes = {"Dense", "Sequential"};
  r.keras.custom_classes = {"MyCustomLayer"};
  OutcomeInput input;
  input.load_target.keras = std::pair{2, 15};
  const Outcome out = DecideOutcome(r, input);
  EXPECT_EQ(out.level, LogLevel::kWarn);
  EXPECT_TRUE(out.cause.empty());
  ASSERT_TRUE(out.load_problem);
  EXPECT_EQ(out.load_problem->classes, "MyCustomLayer");
  EXPECT_EQ(out.load_problem->load, "needs_custom_objects");
  EXPECT_NE(out.load_problem->advice.find("custom_objects for MyCustomLayer"), std::string::npos)
      << out.load_problem->advice;
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
  EXPECT_EQ(loads.level, LogLevel::kInfo);
  EXPECT_FALSE(loads.load_problem);
  VerifyResult cut = Keras1TimeDistributedDense();
  cut.verdict = Verdict::kTruncated;
  const Outcome failed = DecideOutcome(cut, {});
  EXPECT_EQ(FieldValue(failed, "load"), "<absent>");
  EXPECT_FALSE(failed.load);
}

}  // namespace
}  // namespace ckptwatch
