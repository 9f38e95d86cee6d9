// Checkpoint sets through the pipeline, in virtual time: judged at the commit point, or after
// checkpoint_settle with every member closed; judged off the loop (the SetJudge port, answered
// here by the test), never twice at once, and safely forgotten by a reload.
#include "decide/pipeline_test_util.h"

namespace ckptwatch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = WatchEvent::Kind;

class PipelineSets : public PipelineTest {
 protected:
  void StartSets(const std::string& keys = "") {
    StartOne("recursive: true, settle: 1s, checkpoint_settle: 30s, run_depth: 1" +
             (keys.empty() ? "" : ", " + keys));
  }
  /// A file written and closed, as inotify reports it (a set's file need not match `patterns`).
  void Closed(const std::string& name, std::uint64_t size = 4096) { Save(P(name), size); }
  /// What a judgement of `dir` finds: one set of `layout`, `verdict`, `missing` members.
  static CheckpointEvent Set(const std::string& dir, const std::string& layout, SetVerdict verdict,
                             std::vector<std::string> missing = {}, std::string reason = "") {
    SetReport r;
    r.path = r.dir = P(dir);
    r.layout = layout;
    r.verdict = verdict;
    r.members = {"a", "b"};
    r.missing = std::move(missing);
    r.reason = std::move(reason);
    return DescribeSet(r);
  }
  std::vector<FakeReporter::Line> Checkpoints() const {
    return reporter_.Events(LogEvent::kCheckpoint);
  }
};

TEST_F(PipelineSets, ASetIsJudgedOffTheLoopWhenItsCommitPointIsClosed) {
  StartSets();
  Closed("r1/m/model-00001-of-00002.safetensors");
  Closed("r1/m/model-00002-of-00002.safetensors");
  Pass(seconds(2));
  AnswerAllOk();  // each shard verified as a file
  EXPECT_TRUE(judge_.requests.empty()) << "no commit point yet, members quiet for 2 s only";
  Closed("r1/m/model.safetensors.index.json");
  Pass(milliseconds(0));
  ASSERT_EQ(judge_.requests.size(), 1u) << "judged at its commit point, not after a settle";
  EXPECT_EQ(judge_.requests[0].relative, "r1/m");
  EXPECT_EQ(judge_.requests[0].root_path, kRoot);
  EXPECT_TRUE(judge_.requests[0].failed_members.empty());
  EXPECT_TRUE(Checkpoints().empty()) << "nothing is said before the judgement is back";
  AnswerSets({Set("r1/m", "hf_sharded", SetVerdict::kOk)});
  const auto lines = Checkpoints();
  ASSERT_EQ(lines.size(), 1u);
  const auto& line = lines[0];
  EXPECT_EQ(line.level, LogLevel::kInfo);
  EXPECT_EQ(line.fields.at("watch"), "run");
  EXPECT_EQ(line.fields.at("run"), "r1");
  EXPECT_EQ(line.fields.at("verdict"), "ok");
  EXPECT_TRUE(reporter_.failures.empty());
  Pass(seconds(60));
  EXPECT_TRUE(judge_.requests.empty()) << "judged once per save";
}

TEST_F(PipelineSets, AJudgementWaitsForItsMembersVerdictsAndCarriesTheFailedOnes) {
  StartSets();
  Closed("r1/gs20/mp_rank_00_model_states.pt");
  Closed("r1/gs20/zero_pp_rank_1_mp_rank_00_optim_states.pt", 100);
  Closed("r1/latest");  // rank 0 writes it right after the others saved
  Pass(milliseconds(500));
  EXPECT_TRUE(judge_.requests.empty()) << "its files are still settling";
  Pass(seconds(1));
  ASSERT_EQ(Jobs().size(), 2u);
  Pass(seconds(5));
  EXPECT_TRUE(judge_.requests.empty()) << "their verdicts are part of the judgement";
  Answer(Verdict::kOk);
  Answer(Verdict::kTruncated);
  Pass(milliseconds(200));
  ASSERT_EQ(judge_.requests.size(), 1u);
  EXPECT_EQ(judge_.requests[0].relative, "r1");
  ASSERT_EQ(judge_.requests[0].failed_members.size(), 1u);
  const auto& [path, check] = *judge_.requests[0].failed_members.begin();
  EXPECT_EQ(path, P("r1/gs20/zero_pp_rank_1_mp_rank_00_optim_states.pt"));
  EXPECT_EQ(check.verdict, Verdict::kTruncated);
}

TEST_F(PipelineSets, AJudgementWaitsForVerdictsAtMostCheckpointSettle) {
  StartSets();
  Closed("r1/s/model.safetensors.index.json");
  Closed("r1/s/model-00001-of-00001.safetensors");
  Pass(seconds(29));
  ASSERT_EQ(Jobs().size(), 1u);  // never answered: a verifier that hangs
  EXPECT_TRUE(judge_.requests.empty());
  Pass(seconds(2));
  EXPECT_EQ(judge_.requests.size(), 1u);
}

TEST_F(PipelineSets, ADcpSaveWithoutMetadataIsIncompleteAfterCheckpointSettleWithMembersClosed) {
  StartSets();
  Event(Kind::kFileWriting, P("r1/step9/__0_0.distcp"));  // rank 0 still writing
  env_.Write(P("r1/step9/__1_0.distcp"), 4096);
  Event(Kind::kFileWritten, P("r1/step9/__1_0.distcp"));
  Pass(seconds(60));
  EXPECT_TRUE(judge_.requests.empty()) << "a member is still open: its close decides, not time";
  env_.Write(P("r1/step9/__0_0.distcp"), 4096);
  Event(Kind::kFileWritten, P("r1/step9/__0_0.distcp"));
  Pass(seconds(29));
  EXPECT_TRUE(judge_.requests.empty());
  Pass(seconds(1));
  ASSERT_EQ(judge_.requests.size(), 1u);
  EXPECT_EQ(judge_.requests[0].relative, "r1/step9");
  AnswerSets({Set("r1/step9", "dcp", SetVerdict::kIncomplete, {".metadata"},
                  ".metadata is missing: the save did not finish")});
  ASSERT_EQ(Checkpoints().size(), 1u);
  EXPECT_EQ(Checkpoints()[0].level, LogLevel::kError);
  EXPECT_EQ(Checkpoints()[0].fields.at("cause"), "no_commit_point");
  EXPECT_EQ(reporter_.failures["run/r1/no_commit_point"], 1);
}

TEST_F(PipelineSets, ADirectoryIsNotJudgedTwiceAtOnce) {
  StartSets();
  Closed("r1/s/.metadata");
  Pass(milliseconds(0));
  ASSERT_EQ(judge_.requests.size(), 1u);
  Closed("r1/s/.metadata");  // the next save, while the first is judged
  Pass(seconds(60));
  ASSERT_EQ(judge_.requests.size(), 1u);
  AnswerSets({Set("r1/s", "dcp", SetVerdict::kOk)});
  Pass(milliseconds(0));
  ASSERT_EQ(judge_.requests.size(), 1u) << "judged again once the first came back";
  AnswerSets({Set("r1/s", "dcp", SetVerdict::kOk)});
  EXPECT_EQ(Checkpoints().size(), 2u);
}

TEST_F(PipelineSets, AJudgementUnderWayWhenItsWatchIsRemovedIsDropped) {
  env_.MakeDir("/a");
  env_.MakeDir("/b");
  Start(Watch("a", "/a", "recursive: true, checkpoint_settle: 30s") +
        Watch("b", "/b", "recursive: true"));
  env_.Write("/a/s/.metadata", 10);
  Event(Kind::kFileWritten, "/a/s/.metadata", "/a");
  Pass(milliseconds(0));
  ASSERT_EQ(judge_.requests.size(), 1u);
  ASSERT_TRUE(Reload(Watch("b", "/b", "recursive: true")));
  AnswerSets({Set("s", "dcp", SetVerdict::kIncomplete, {"__0_0.distcp"}, "a rank is missing")});
  EXPECT_TRUE(Checkpoints().empty());
  EXPECT_TRUE(reporter_.failures.empty());
  // Added back under the same name: the old judgement is still not its.
  env_.Write("/a/t/.metadata", 10);
  ASSERT_TRUE(Reload(Watch("a", "/a", "recursive: true") + Watch("b", "/b", "recursive: true")));
  Event(Kind::kFileWritten, "/a/t/.metadata", "/a");
  Pass(milliseconds(0));
  ASSERT_EQ(judge_.requests.size(), 1u);
  SetJudgeRequest stale = judge_.requests[0];
  stale.id = 1;  // the removed watch's request
  pipeline_->OnSetsJudged(SetJudgeResult{stale, {Set("s", "dcp", SetVerdict::kIncomplete)}});
  EXPECT_TRUE(Checkpoints().empty());
  AnswerSets({Set("t", "dcp", SetVerdict::kOk)});
  EXPECT_EQ(Checkpoints().size(), 1u);
}

TEST_F(PipelineSets, ALiveReloadKeepsTheJudgementUnderWayAndAppliesCheckpointSettle) {
  StartSets();
  Closed("r1/s/.metadata");
  Pass(milliseconds(0));
  ASSERT_EQ(judge_.requests.size(), 1u);
  ASSERT_TRUE(Reload(
      Watch("run", kRoot, "recursive: true, settle: 1s, checkpoint_settle: 5s, run_depth: 1")));
  AnswerSets({Set("r1/s", "dcp", SetVerdict::kOk)});
  EXPECT_EQ(Checkpoints().size(), 1u);
  Closed("r1/t/__0_0.distcp");
  Pass(seconds(5));
  EXPECT_EQ(judge_.requests.size(), 1u) << "the new checkpoint_settle applies";
}

TEST_F(PipelineSets, AStagingDirectoryRenamedIntoPlaceIsJudgedOnceSettled) {
  StartSets();
  env_.MakeDir(P("r1"));
  env_.MakeDir(P("r1/tmp-checkpoint-5"));
  Event(Kind::kDirectoryCreated, P("r1/tmp-checkpoint-5"));
  Closed("r1/tmp-checkpoint-5/trainer_state.json");
  Pass(seconds(60));
  EXPECT_TRUE(judge_.requests.empty()) << "a staging directory is excluded";
  env_.MakeDir(P("r1/checkpoint-5"));
  WatchEvent gone;
  gone.kind = Kind::kNameGone;
  gone.watch_id = watcher_.IdOf(kRoot);
  gone.path = P("r1/tmp-checkpoint-5");
  gone.moved_to = P("r1/checkpoint-5");
  pipeline_->OnWatchEvent(gone);
  Event(Kind::kDirectoryCreated, P("r1/checkpoint-5"));
  Pass(seconds(1));
  ASSERT_EQ(judge_.requests.size(), 1u);
  EXPECT_EQ(judge_.requests[0].relative, "r1/checkpoint-5");
}

TEST_F(PipelineSets, ACompleteSetIsCountedAndShownAsTheRunsResumePoint) {
  StartSets();
  Closed("r1/s5/.metadata");
  Pass(milliseconds(0));
  CheckpointEvent ok = Set("r1/s5", "dcp", SetVerdict::kOk);
  ok.step = 5;
  AnswerSets({ok});
  EXPECT_EQ(reporter_.sets["run/dcp/ok"], 1);
  EXPECT_EQ(reporter_.last_complete["run/r1"], env_.UnixNow());
  const StatusSnapshot status = pipeline_->CurrentStatus();
  ASSERT_EQ(status.watches.size(), 1u);
  ASSERT_EQ(status.watches[0].complete_sets.size(), 1u);
  const WatchStatus::CompleteSet& c = status.watches[0].complete_sets[0];
  EXPECT_EQ(c.run, "r1");
  EXPECT_EQ(c.path, P("r1/s5"));
  EXPECT_EQ(c.layout, "dcp");
  EXPECT_EQ(c.step, 5);
  // An incomplete newer one is counted, and is no resume point.
  Closed("r1/s6/.metadata");
  Pass(milliseconds(0));
  AnswerSets({Set("r1/s6", "dcp", SetVerdict::kIncomplete, {"__1_0.distcp"}, "rank 1 missing")});
  EXPECT_EQ(reporter_.sets["run/dcp/incomplete"], 1);
  EXPECT_EQ(pipeline_->CurrentStatus().watches[0].complete_sets[0].path, P("r1/s5"));
}

TEST_F(PipelineSets, ABrokenSetTakesTheCauseItsMembersGave) {
  StartSets();
  Closed("r1/gs2/mp_rank_00_model_states.pt", 100);
  Pass(seconds(2));
  Answer(Verdict::kCorrupt);  // the verifier's own verdict of that member
  ASSERT_FALSE(reporter_.failures.empty());
  const std::string member_cause =
      reporter_.failures.begin()->first.substr(std::string("run/r1/").size());
  ASSERT_EQ(member_cause, "corrupt");
  Pass(seconds(30));
  ASSERT_EQ(judge_.requests.size(), 1u);
  SetReport r;
  r.path = r.dir = P("r1/gs2");
  r.layout = "deepspeed";
  r.verdict = SetVerdict::kIncomplete;
  r.at_fault = {"mp_rank_00_model_states.pt"};
  r.reason = "mp_rank_00_model_states.pt does not verify";
  AnswerSets({DescribeSet(r)});
  EXPECT_EQ(reporter_.failures["run/r1/" + member_cause], 2)
      << "the set fails with its member's cause";
}

TEST_F(PipelineSets, AResumePointerNamingABrokenSetIsCountedUntilFixedOrGone) {
  StartSets();
  Closed("r1/latest");
  Pass(milliseconds(0));
  ASSERT_EQ(judge_.requests.size(), 1u);
  EXPECT_EQ(judge_.requests[0].relative, "r1");
  PointerReport p{
      P("r1/latest"),
      "deepspeed_latest",
      P("r1/global_step20"),
      "incomplete",
      "latest names global_step20, which is incomplete (...): resume will load a partial "
      "checkpoint or fail; the last complete one is " +
          P("r1/global_step10"),
      P("r1/global_step10")};
  AnswerSets({DescribePointer(p)});
  EXPECT_EQ(reporter_.broken_pointers["run"], 1u);
  const auto lines = Checkpoints();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, LogLevel::kWarn);
  EXPECT_EQ(lines[0].fields.at("pointer"), "deepspeed_latest");
  EXPECT_EQ(lines[0].fields.at("last_complete"), P("r1/global_step10"));
  // Rewritten to name a complete set: cleared.
  Closed("r1/latest");
  Pass(milliseconds(0));
  p.verdict = "ok";
  AnswerSets({DescribePointer(p)});
  EXPECT_EQ(reporter_.broken_pointers["run"], 0u);
  EXPECT_EQ(Checkpoints().size(), 1u) << "a pointer that is fine is not logged";
  // Broken again, then deleted: cleared.
  Closed("r1/latest");
  Pass(milliseconds(0));
  p.verdict = "missing";
  AnswerSets({DescribePointer(p)});
  EXPECT_EQ(reporter_.broken_pointers["run"], 1u);
  env_.Remove(P("r1/latest"));
  Event(Kind::kNameGone, P("r1/latest"));
  EXPECT_EQ(reporter_.broken_pointers["run"], 0u);
}

}  // namespace
}  // namespace ckptwatch::testing
