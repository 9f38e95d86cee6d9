// Runs under one recursive watch (run_depth, max_runs), driven through the
// pipeline in virtual time.
#include "decide/pipeline_test_util.h"

namespace ckptwatch::testing {
namespace {

using std::chrono::seconds;
using Kind = WatchEvent::Kind;

class PipelineRuns : public PipelineTest {
 protected:
  void StartRuns(const std::string& keys = "") {
    StartOne("recursive: true, settle: 1s, run_depth: 1" + (keys.empty() ? "" : ", " + keys));
  }
  /// A run directory appears, as inotify reports it.
  void NewRun(const std::string& run) {
    env_.MakeDir(P(run));
    Event(Kind::kDirectoryCreated, P(run));
  }
  /// A save of `path`, verified with `verdict` once it settled.
  void Saved(const std::string& path, Verdict verdict) {
    Save(path);
    Pass(seconds(2));
    Answer(verdict);
  }
};

TEST_F(PipelineRuns, AFailedSaveCarriesItsRunAndAnotherRunKeepsItsLastGood) {
  StartRuns();
  NewRun("runA");
  NewRun("runB");
  EXPECT_TRUE(reporter_.runs.count("run/runB")) << "the failure series exist before a failure";
  Saved(P("runA/epoch_1.h5"), Verdict::kOk);
  Saved(P("runB/ckpt/epoch_1.h5"), Verdict::kTruncated);

  EXPECT_EQ(reporter_.failures["run/runB/truncated"], 1);
  EXPECT_EQ(reporter_.failures.count("run/truncated"), 0u);
  EXPECT_EQ(reporter_.last_good["run/runA"], 4096u);
  EXPECT_EQ(reporter_.last_good.count("run/runB"), 0u);
  EXPECT_TRUE(reporter_.last_ok["run/runA"]);
  EXPECT_FALSE(reporter_.last_ok["run/runB"]);
  ASSERT_EQ(Verdicts(P("runB/ckpt/epoch_1.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("runB/ckpt/epoch_1.h5"))[0].run, "runB");
  EXPECT_EQ(Verdicts(P("runA/epoch_1.h5"))[0].run, "runA");
}

TEST_F(PipelineRuns, RunsFoundAtStartHaveSeriesBeforeTheirFirstVerdict) {
  env_.MakeDir(P("old"));
  env_.Write(P("old/a.h5"), 1);
  env_.Advance(seconds(1));
  env_.MakeDir(P("new"));
  env_.Write(P("new/a.h5"), 1);
  StartRuns("max_runs: 1");
  EXPECT_TRUE(reporter_.runs.count("run/new"));
  EXPECT_FALSE(reporter_.runs.count("run/old")) << "only the max_runs most recently written";
  EXPECT_TRUE(reporter_.Expired().empty())
      << "runs past the bound at start are not news";
}

TEST_F(PipelineRuns, PastMaxRunsTheLeastRecentlyActiveRunExpires) {
  StartRuns("max_runs: 2");
  NewRun("a");
  NewRun("b");
  Saved(P("a/1.h5"), Verdict::kOk);  // a is now more recent than b
  NewRun("c");
  EXPECT_EQ(reporter_.removed_runs, std::vector<std::string>{"run/b"});
  EXPECT_EQ(reporter_.runs, (std::set<std::string>{"run/a", "run/c"}));
  ASSERT_EQ(reporter_.Expired().size(), 1u);
  EXPECT_EQ(reporter_.Expired()[0].run, "b");
  EXPECT_EQ(reporter_.Expired()[0].expired_for, "c");

  // An expired run that saves again comes back, expiring the next idlest.
  Saved(P("b/2.h5"), Verdict::kTruncated);
  EXPECT_EQ(reporter_.failures["run/b/truncated"], 1);
  EXPECT_EQ(reporter_.runs, (std::set<std::string>{"run/b", "run/c"}));
}

TEST_F(PipelineRuns, ARunsDirectoryDeletedRemovesItsSeries) {
  StartRuns();
  NewRun("a");
  env_.MakeDir(P("a/sub"));
  Event(Kind::kDirectoryCreated, P("a/sub"));
  Event(Kind::kNameGone, P("a/sub"));
  EXPECT_TRUE(reporter_.runs.count("run/a")) << "a directory inside the run is not the run";
  env_.RemoveDir(P("a"));
  Event(Kind::kNameGone, P("a"));
  EXPECT_FALSE(reporter_.runs.count("run/a"));
  EXPECT_EQ(reporter_.removed_runs, std::vector<std::string>{"run/a"});
}

TEST_F(PipelineRuns, FilesAboveTheRunDepthHaveNoRun) {
  StartRuns();
  Saved(P("loose.h5"), Verdict::kTruncated);
  EXPECT_EQ(reporter_.failures["run/truncated"], 1);
  EXPECT_TRUE(reporter_.runs.empty());
  EXPECT_EQ(Verdicts(P("loose.h5"))[0].run, "");
}

TEST_F(PipelineRuns, TheRunIsTheComponentAtRunDepth) {
  StartOne("recursive: true, settle: 1s, run_depth: 2");
  env_.MakeDir(P("team"));
  env_.MakeDir(P("team/r7"));
  Event(Kind::kDirectoryCreated, P("team/r7"));
  Saved(P("team/r7/x/1.h5"), Verdict::kOk);
  EXPECT_EQ(reporter_.last_good["run/r7"], 4096u);
  EXPECT_EQ(reporter_.runs, std::set<std::string>{"run/r7"});
}

TEST_F(PipelineRuns, WithoutRunDepthNothingChanges) {
  StartOne("recursive: true, settle: 1s");
  env_.MakeDir(P("runA"));
  Event(Kind::kDirectoryCreated, P("runA"));
  Saved(P("runA/1.h5"), Verdict::kTruncated);
  EXPECT_EQ(reporter_.failures["run/truncated"], 1);
  EXPECT_TRUE(reporter_.runs.empty());
  EXPECT_EQ(Verdicts(P("runA/1.h5"))[0].run, "");
}

TEST_F(PipelineRuns, ChangingRunDepthByReloadRemovesTheOldRunsSeries) {
  StartRuns();
  NewRun("a");
  ASSERT_TRUE(Reload(Watch("run", kRoot, "recursive: true, settle: 1s, run_depth: 2")));
  EXPECT_EQ(reporter_.removed_runs, std::vector<std::string>{"run/a"});
  EXPECT_TRUE(reporter_.runs.empty());
}

TEST_F(PipelineRuns, AFailureIsResolvedOnlyByANewerGoodSaveOfItsOwnRunAndNotByItsOwnSave) {
  StartOne("recursive: true, run_depth: 1, settle: 0s");
  env_.MakeDir(P("runA"));
  env_.MakeDir(P("runB"));
  env_.MakeDir(P("runA/checkpoint-6"));
  Save(P("runA/checkpoint-6/optimizer.pt"));
  Pass(std::chrono::milliseconds(1));
  Answer(Verdict::kTruncated);
  env_.Advance(std::chrono::seconds(1));
  Save(P("runA/checkpoint-6/model.safetensors"));  // the same save: ends nothing
  env_.Advance(std::chrono::seconds(1));
  Save(P("runB/epoch_9.h5"));  // another run: ends nothing
  Pass(std::chrono::milliseconds(1));
  AnswerAllOk();
  EXPECT_EQ(reporter_.failing["run/runA/truncated"], 1u);
  EXPECT_FALSE(pipeline_->CurrentStatus().AllWell());
  env_.Advance(std::chrono::seconds(1));
  env_.MakeDir(P("runA/checkpoint-7"));
  Save(P("runA/checkpoint-7/model.safetensors"));
  Pass(std::chrono::milliseconds(1));
  AnswerAllOk();
  EXPECT_EQ(reporter_.failing["run/runA/truncated"], 0u);
  const StatusSnapshot status = pipeline_->CurrentStatus();
  EXPECT_TRUE(status.AllWell());
  ASSERT_EQ(status.watches[0].resolved.size(), 1u);
  EXPECT_EQ(status.watches[0].resolved[0].resolved_by, P("runA/checkpoint-7/model.safetensors"));
  EXPECT_EQ(status.watches[0].resolved[0].run, "runA");
}

TEST_F(PipelineRuns, AFileWrittenAgainGoodResolvesItsOwnFailure) {
  StartOne("settle: 0s");
  Save(P("best.h5"));
  Pass(std::chrono::milliseconds(1));
  Answer(Verdict::kTruncated);
  EXPECT_EQ(reporter_.failing["run/truncated"], 1u);
  env_.Advance(std::chrono::seconds(1));
  Save(P("best.h5"), 8192);
  Pass(std::chrono::milliseconds(1));
  Answer(Verdict::kOk);
  EXPECT_EQ(reporter_.failing["run/truncated"], 0u);
  const StatusSnapshot status = pipeline_->CurrentStatus();
  ASSERT_EQ(status.watches[0].resolved.size(), 1u);
  EXPECT_EQ(status.watches[0].resolved[0].resolved_by, P("best.h5"));
}

}  // namespace
}  // namespace ckptwatch::testing
