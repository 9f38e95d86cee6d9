// Watch roots that come and go, hostile names, and the problems of a watch,
// driven through the pipeline in virtual time.
#include <map>

#include "decide/pipeline_test_util.h"

namespace ckptwatch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = WatchEvent::Kind;

class PipelineRoots : public PipelineTest {};

TEST_F(PipelineRoots, AMissingRootIsAProblemAndItsAncestorIsWatched) {
  env_.MakeDir("/data");
  Load(Watch("run", "/data/runs/42", "settle: 0s"), "", &config_);
  pipeline_ = std::make_unique<Pipeline>(config_, env_, &watcher_, scanner_, verifier_, judge_, reporter_);
  pipeline_->Start();
  EXPECT_EQ(reporter_.backends["run"], "none");
  EXPECT_TRUE(reporter_.problems["run/missing_directory"]);
  ASSERT_EQ(reporter_.Events(LogEvent::kWatchMissing).size(), 1u);
  EXPECT_EQ(reporter_.Events(LogEvent::kWatchMissing)[0].fields.at("waiting_on"), "/data");
  EXPECT_NE(watcher_.IdOf("/data"), -1);
  EXPECT_NE(pipeline_->Status().find("1 missing"), std::string::npos);
}

TEST_F(PipelineRoots, ARootCreatedLevelByLevelIsWatchedAndAllOfItVerified) {
  env_.MakeDir("/data");
  Load(Watch("run", "/data/runs/42", "settle: 0s"), "", &config_);
  pipeline_ = std::make_unique<Pipeline>(config_, env_, &watcher_, scanner_, verifier_, judge_, reporter_);
  pipeline_->Start();
  env_.MakeDir("/data/runs");
  Event(Kind::kDirectoryCreated, "/data/runs", "/data");
  EXPECT_NE(watcher_.IdOf("/data/runs"), -1) << "the watch moves down as the path appears";
  env_.MakeDir("/data/runs/42");
  env_.Write("/data/runs/42/a.h5", 1);
  env_.Write("/data/runs/42/b.h5", 2);
  Event(Kind::kDirectoryCreated, "/data/runs/42", "/data/runs");
  EXPECT_EQ(reporter_.Events(LogEvent::kWatchRecovered).size(), 1u);
  EXPECT_FALSE(reporter_.problems["run/missing_directory"]);
  EXPECT_EQ(reporter_.rescans["run/recovered"], 1);
  Pass(milliseconds(1));
  EXPECT_EQ(Jobs().size(), 2u) << "every file of a directory that just appeared is new";
}

TEST_F(PipelineRoots, ADeletedRootGoesMissingOnTheNextTick) {
  StartOne("settle: 0s");
  env_.RemoveDir(kRoot);
  Ticks(1);
  EXPECT_TRUE(reporter_.problems["run/missing_directory"]);
  EXPECT_NE(reporter_.Events(LogEvent::kWatchMissing).at(0).msg.find("it was deleted"), std::string::npos);
  env_.MakeDir(kRoot);
  Ticks(1);
  EXPECT_EQ(reporter_.Events(LogEvent::kWatchRecovered).size(), 1u);
}

TEST_F(PipelineRoots, ARootMovedAwayGoesMissingAtOnce) {
  StartOne();
  env_.RemoveDir(kRoot);
  Event(Kind::kDirectoryGone, kRoot);
  EXPECT_TRUE(reporter_.problems["run/missing_directory"]);
  EXPECT_EQ(watcher_.IdOf(kRoot), -1);
}

TEST_F(PipelineRoots, ARootThatIsSomeoneElsesSymlinkIsNotFollowed) {
  env_.MakeUntrustedSymlinkRoot(kRoot);
  StartOne();
  EXPECT_TRUE(reporter_.problems["run/missing_directory"]);
  ASSERT_EQ(reporter_.Events(LogEvent::kWatchMissing).size(), 1u);
  EXPECT_NE(reporter_.Events(LogEvent::kWatchMissing)[0].msg.find("is not a directory ckptwatch follows"),
            std::string::npos);
  Ticks(2);
  EXPECT_TRUE(reporter_.Events(LogEvent::kWatchRecovered).empty());
  EXPECT_TRUE(scanner_.requests.empty());
}

class PipelineNames : public PipelineTest {};

TEST_F(PipelineNames, AFifoNamedLikeACheckpointIsNotRegularAtOnceWithoutAChild) {
  StartOne("settle: 0s");
  env_.MakeSpecial(P("x.h5"), S_IFIFO);
  Event(Kind::kFileWritten, P("x.h5"));
  Pass(milliseconds(1));
  EXPECT_TRUE(Jobs().empty()) << "a FIFO must not take a verifier slot";
  ASSERT_EQ(Verdicts(P("x.h5")).size(), 1u);
  EXPECT_EQ(VerdictName(Verdicts(P("x.h5"))[0].verdict), "not_regular");
  EXPECT_NE(Verdicts(P("x.h5"))[0].msg.find("FIFO"), std::string::npos);
  Save(P("ok.h5"));
  Pass(milliseconds(1));
  EXPECT_EQ(Jobs().size(), 1u) << "nothing stalls behind it";
}

TEST_F(PipelineNames, ADirectoryNamedLikeACheckpointIsNotRegular) {
  StartOne("settle: 0s");
  env_.MakeDir(P("d.h5"));
  Event(Kind::kDirectoryCreated, P("d.h5"));
  Pass(milliseconds(1));
  ASSERT_EQ(Verdicts(P("d.h5")).size(), 1u);
  EXPECT_EQ(VerdictName(Verdicts(P("d.h5"))[0].verdict), "not_regular");
  EXPECT_EQ(reporter_.failures["run/not_regular"], 1);
}

TEST_F(PipelineNames, ASymlinkOutsideTheRootIsSaidOnceAndNeverVerified) {
  StartOne("settle: 0s");
  env_.MakeSymlink(P("ckpt.h5"), "/home/alice/private.h5", LinkTarget::kOutside);
  Event(Kind::kFileWritten, P("ckpt.h5"));
  Event(Kind::kFileWritten, P("ckpt.h5"));
  Pass(seconds(1));
  EXPECT_TRUE(Jobs().empty());
  EXPECT_TRUE(Verdicts(P("ckpt.h5")).empty());
  ASSERT_EQ(reporter_.Events(LogEvent::kSymlinkOutside).size(), 1u);
  EXPECT_EQ(reporter_.Events(LogEvent::kSymlinkOutside)[0].level, LogLevel::kWarn);
}

TEST_F(PipelineNames, ASymlinkToACheckpointInsideAddsNothing) {
  StartOne("settle: 0s");
  Save(P("epoch=3.h5"));
  env_.MakeSymlink(P("last.h5"), "epoch=3.h5", LinkTarget::kInside);
  Event(Kind::kFileWritten, P("last.h5"));
  Pass(seconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].path, P("epoch=3.h5"));
  EXPECT_TRUE(reporter_.Events(LogEvent::kSymlinkOutside).empty());
  EXPECT_TRUE(reporter_.Events(LogEvent::kSymlinkDangling).empty());
  EXPECT_EQ(reporter_.Events(LogEvent::kSymlinkSkipped).size(), 1u);
}

TEST_F(PipelineNames, ADanglingSymlinkIsWorthALine) {
  StartOne("settle: 0s");
  env_.MakeSymlink(P("last.h5"), "epoch=9.h5", LinkTarget::kDangling);
  Event(Kind::kFileWritten, P("last.h5"));
  ASSERT_EQ(reporter_.Events(LogEvent::kSymlinkDangling).size(), 1u);
  EXPECT_EQ(reporter_.Events(LogEvent::kSymlinkDangling)[0].fields.at("target"), "epoch=9.h5");
}

TEST_F(PipelineNames, ANameReachedThroughASymlinkedDirectoryIsDroppedWithoutAWord) {
  StartOne("settle: 0s, recursive: true");
  env_.MakeDir(P("evil"));
  env_.MakeSymlinkedDir(P("evil"));
  Event(Kind::kFileWritten, P("evil/alices_secret_plan.h5"));
  Pass(seconds(1));
  EXPECT_TRUE(Jobs().empty());
  EXPECT_TRUE(NeverLogged("alices_secret_plan")) << "a private name reached the log";
}

TEST_F(PipelineNames, AFileGoneBeforeItsEventIsHandledIsDropped) {
  StartOne("settle: 0s");
  Event(Kind::kFileWritten, P("vanished.h5"));
  Pass(seconds(1));
  EXPECT_TRUE(Jobs().empty());
  EXPECT_TRUE(reporter_.Events(LogEvent::kVerify).empty());
}

TEST_F(PipelineNames, AFileDeletedAfterItsEventIsVerifiedAndNotFound) {
  StartOne("settle: 1s");
  Save(P("a.h5"));
  env_.Remove(P("a.h5"));
  Pass(seconds(2));
  ASSERT_EQ(Jobs().size(), 1u);  // the verifier opens it and finds nothing
  Answer(Verdict::kNotFound);
  EXPECT_EQ(reporter_.failures["run/not_found"], 1);
}

class PipelineProblems : public PipelineTest {};

TEST_F(PipelineProblems, NoGoodCheckpointForExpectEveryIsStaleUntilTheNextOk) {
  StartOne("settle: 0s, expect_every: 10s");
  Ticks(9);
  EXPECT_FALSE(reporter_.problems["run/stale"]);
  Ticks(2);
  EXPECT_TRUE(reporter_.problems["run/stale"]);
  EXPECT_EQ(reporter_.Problems(/*started=*/true).size(), 1u) << "a problem is said once when it starts";
  Ticks(5);
  EXPECT_EQ(reporter_.Problems(/*started=*/true).size(), 1u);
  Save(P("a.h5"));
  Pass(milliseconds(1));
  Answer(Verdict::kOk);
  EXPECT_FALSE(reporter_.problems["run/stale"]);
  EXPECT_EQ(reporter_.Problems(/*started=*/false).size(), 1u);
}

TEST_F(PipelineProblems, TheStaleReasonInStatusIsHowLongItIsNowInWholeSeconds) {
  StartOne("settle: 0s, expect_every: 10s");
  Ticks(11);
  ASSERT_EQ(reporter_.Problems(/*started=*/true).size(), 1u);
  Pass(milliseconds(50924));  // no tick: the problem's own reason is not renewed
  const StatusSnapshot status = pipeline_->CurrentStatus();
  ASSERT_EQ(status.watches[0].problems.size(), 1u);
  EXPECT_EQ(status.watches[0].problems[0].reason, "no good checkpoint for 1m1s (expect_every 10s)");
}

TEST_F(PipelineProblems, AnOkFileThatMayNotLoadIsInStatusUntilWrittenAgainWithout) {
  StartOne("settle: 0s, load_target: {keras: \"2.15\"}");
  Save(P("custom.h5"));
  Pass(milliseconds(1));
  AnswerWith([](VerifyResult& result) {
    result.verdict = Verdict::kOk;
    result.reason = "ok";
    result.keras = {
        "2.15.0", "tensorflow", "full_model", {"MyCustomLayer"}, {"Dense", "Sequential"}, {}, 0, 0,
        {}};
  });
  ASSERT_EQ(Verdicts(P("custom.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("custom.h5"))[0].line_level, LogLevel::kWarn);
  StatusSnapshot status = pipeline_->CurrentStatus();
  EXPECT_TRUE(status.AllWell());
  ASSERT_EQ(status.watches[0].load_problems.size(), 1u);
  EXPECT_EQ(status.watches[0].load_problems[0].path, P("custom.h5"));
  EXPECT_EQ(status.watches[0].load_problems[0].classes, "MyCustomLayer");
  EXPECT_EQ(status.watches[0].load_problems[0].target, "keras=2.15");

  Save(P("custom.h5"), 8192);
  Pass(milliseconds(1));
  Answer(Verdict::kOk, 8192);
  EXPECT_TRUE(pipeline_->CurrentStatus().watches[0].load_problems.empty());
}

TEST_F(PipelineProblems, LessFreeSpaceThanTheNextSaveNeedsIsLowSpace) {
  StartOne("settle: 0s");
  Save(P("a.h5"), std::uint64_t{10} << 30);
  Pass(milliseconds(1));
  Answer(Verdict::kOk, std::uint64_t{10} << 30);
  EXPECT_FALSE(reporter_.problems["run/low_space"]);
  env_.space.avail = std::uint64_t{12} << 30;  // less than 1.5x the last good checkpoint
  Ticks(1);
  EXPECT_TRUE(reporter_.problems["run/low_space"]);
}

TEST_F(PipelineProblems, AWriterThatCannotCreateFilesIsNotWritableUntilFixed) {
  env_.writer_cannot_create = "user trainer cannot write /ckpt (mode 0755, owner root)";
  StartOne("writer: root");
  EXPECT_TRUE(reporter_.problems["run/not_writable"]);
  env_.writer_cannot_create.clear();
  Ticks(29);
  EXPECT_TRUE(reporter_.problems["run/not_writable"]);
  Ticks(2);
  EXPECT_FALSE(reporter_.problems["run/not_writable"]);
}

TEST_F(PipelineProblems, AChmodOfTheRootChecksTheWriterAtOnce) {
  env_.writer_cannot_create = "cannot";
  StartOne("writer: root");
  env_.writer_cannot_create.clear();
  Event(Kind::kAttributesChanged, kRoot);
  EXPECT_FALSE(reporter_.problems["run/not_writable"]);
}

TEST_F(PipelineProblems, ACheckpointItsReadersCannotReadIsAFailedSave) {
  StartOne("settle: 0s, readers: [root]");
  env_.unreadable_by[P("a.h5")] = "user root cannot read it";
  Save(P("a.h5"));
  Pass(milliseconds(1));
  Answer(Verdict::kOk);
  EXPECT_TRUE(reporter_.problems["run/unreadable"]);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "permission_denied");
  EXPECT_EQ(reporter_.failures["run/permission_denied"], 1);
}

TEST_F(PipelineProblems, TheSummaryNamesTheLastGoodCheckpoint) {
  StartOne("settle: 0s", "log: {summary_every: 1m}\n");
  Save(P("epoch_7.h5"), 2048);
  Pass(milliseconds(1));
  Answer(Verdict::kOk, 2048);
  Ticks(61);
  ASSERT_FALSE(reporter_.Events(LogEvent::kSummary).empty());
  EXPECT_EQ(reporter_.Events(LogEvent::kSummary).back().fields.at("last_good"), P("epoch_7.h5"));
  EXPECT_NE(reporter_.Events(LogEvent::kSummary).back().msg.find("epoch_7.h5"), std::string::npos);
}

}  // namespace
}  // namespace ckptwatch::testing

namespace ckptwatch::testing {
namespace {

class PipelineStatus : public PipelineTest {};

TEST_F(PipelineStatus, NamesFailingFilesLastGoodAndProblemsPerWatch) {
  env_.MakeDir("/runs/runA");
  env_.MakeDir("/runs/runB");
  Start(Watch("runA", "/runs/runA", "settle: 0s") + Watch("runB", "/runs/runB", "settle: 0s") +
        Watch("gone", "/runs/runC", "settle: 0s"));
  env_.Write("/runs/runA/epoch_3.h5", 5000);
  Event(WatchEvent::Kind::kFileWritten, "/runs/runA/epoch_3.h5", "/runs/runA");
  env_.Write("/runs/runB/epoch_3.h5", 100);
  Event(WatchEvent::Kind::kFileWritten, "/runs/runB/epoch_3.h5", "/runs/runB");
  Pass(std::chrono::milliseconds(1));
  while (!Jobs().empty())
    Answer(Jobs().front().watch == "runB" ? Verdict::kTruncated : Verdict::kOk,
           Jobs().front().watch == "runB" ? 100 : 5000);
  const StatusSnapshot status = pipeline_->CurrentStatus();
  ASSERT_EQ(status.watches.size(), 3u);
  std::map<std::string, WatchStatus> by_name;
  for (const WatchStatus& w : status.watches) by_name[w.name] = w;
  ASSERT_TRUE(by_name["runA"].last_good);
  EXPECT_EQ(by_name["runA"].last_good->path, "/runs/runA/epoch_3.h5");
  EXPECT_EQ(by_name["runA"].last_good->bytes, 5000u);
  EXPECT_TRUE(by_name["runA"].failing.empty());
  ASSERT_EQ(by_name["runB"].failing.size(), 1u);
  EXPECT_EQ(by_name["runB"].failing[0].path, "/runs/runB/epoch_3.h5");
  EXPECT_EQ(by_name["runB"].failing[0].verdict, "truncated");
  EXPECT_EQ(by_name["runB"].failing[0].cause, "truncated");
  EXPECT_EQ(by_name["runB"].failing[0].count, 1u);
  EXPECT_GT(by_name["runB"].failing[0].since_unix, 0);
  EXPECT_EQ(by_name["gone"].state, "missing");
  ASSERT_EQ(by_name["gone"].problems.size(), 1u);
  EXPECT_EQ(by_name["gone"].problems[0].name, "missing_directory");
  EXPECT_FALSE(status.AllWell());
  // The file is saved again, whole: it no longer fails.
  env_.Write("/runs/runB/epoch_3.h5", 5000);
  Event(WatchEvent::Kind::kFileWritten, "/runs/runB/epoch_3.h5", "/runs/runB");
  Pass(std::chrono::milliseconds(1));
  Answer(Verdict::kOk, 5000);
  for (const WatchStatus& w : pipeline_->CurrentStatus().watches)
    if (w.name == "runB") {
      EXPECT_TRUE(w.failing.empty());
    }
}

}  // namespace
}  // namespace ckptwatch::testing
