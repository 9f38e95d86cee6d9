// The save shapes users produce, driven through the pipeline in virtual time.
#include "decide/pipeline_test_util.h"

namespace ckptwatch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = WatchEvent::Kind;

class PipelineSaves : public PipelineTest {};

TEST_F(PipelineSaves, AClosedCheckpointIsVerifiedOnceAfterTheSettleTime) {
  StartOne("settle: 2s");
  Save(P("epoch_1.h5"));
  Pass(milliseconds(1999));
  EXPECT_TRUE(Jobs().empty()) << "dispatched before the quiet period ended";
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].path, P("epoch_1.h5"));
  EXPECT_EQ(Jobs()[0].relative, "epoch_1.h5");
  Answer(Verdict::kOk);
  ASSERT_EQ(Verdicts(P("epoch_1.h5")).size(), 1u);
  EXPECT_EQ(VerdictName(Verdicts(P("epoch_1.h5"))[0].verdict), "ok");
  EXPECT_EQ(reporter_.verified["run/ok"], 1);
  EXPECT_EQ(reporter_.last_good["run"], 4096u);
}

TEST_F(PipelineSaves, WritesWithinTheSettleWindowAreOneVerification) {
  StartOne("settle: 1s");
  for (int i = 0; i < 3; ++i) {
    Save(P("best.h5"), 1000 + i);
    Pass(milliseconds(500));
  }
  Pass(seconds(2));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kOk);
  EXPECT_EQ(Verdicts(P("best.h5")).size(), 1u);
}

TEST_F(PipelineSaves, InPlaceRewriteEachEpochGetsAVerdictEach) {
  StartOne("settle: 0s");
  for (int epoch = 0; epoch < 3; ++epoch) {
    Save(P("best.h5"), 2000 + epoch);
    Pass(milliseconds(1));
    Answer(Verdict::kOk);
    Pass(seconds(60));
  }
  EXPECT_EQ(Verdicts(P("best.h5")).size(), 3u);
}

TEST_F(PipelineSaves, ACloseWithoutAWriteSinceTheLastVerdictIsNotANewCheckpoint) {
  // HDF5 opens O_RDWR and closes before truncating: a close-write of an unchanged file.
  StartOne("settle: 0s");
  Save(P("a.h5"));
  Pass(milliseconds(1));
  Answer(Verdict::kOk);
  Event(Kind::kFileWritten, P("a.h5"));
  Pass(seconds(1));
  EXPECT_TRUE(Jobs().empty());
  EXPECT_EQ(reporter_.Events(LogEvent::kVerifySkipped).size(), 1u);
}

TEST_F(PipelineSaves, TempFileRenamedIntoPlaceIsVerifiedOnceUnderItsFinalName) {
  // ModelCheckpoint-style: write ".epoch_3.h5.tmp", rename to "epoch_3.h5".
  StartOne("settle: 100ms");
  env_.Write(P(".epoch_3.h5.tmp"), 9000);
  Event(Kind::kFileWritten, P(".epoch_3.h5.tmp"));
  env_.Rename(P(".epoch_3.h5.tmp"), P("epoch_3.h5"));
  Event(Kind::kFileWritten, P("epoch_3.h5"));
  Pass(seconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].path, P("epoch_3.h5"));
}

TEST_F(PipelineSaves, NamesThatDoNotMatchThePatternsAreIgnored) {
  StartOne("settle: 0s, patterns: [\"*.keras\"]");
  Save(P("a.h5"));
  Save(P("notes.txt"));
  Save(P("model.keras"));
  Pass(seconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].path, P("model.keras"));
}

TEST_F(PipelineSaves, AWriteDuringVerificationSupersedesTheVerdict) {
  StartOne("settle: 0s");
  Save(P("best.h5"), 100);
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  Save(P("best.h5"), 200);  // the trainer saves again while the child reads
  Answer(Verdict::kTruncated);
  EXPECT_TRUE(Verdicts(P("best.h5")).empty()) << "the stale verdict was reported";
  EXPECT_EQ(reporter_.Events(LogEvent::kVerifySuperseded).size(), 1u);
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kOk, 200);
  ASSERT_EQ(Verdicts(P("best.h5")).size(), 1u);
  EXPECT_EQ(VerdictName(Verdicts(P("best.h5"))[0].verdict), "ok");
}

TEST_F(PipelineSaves, ABrokenVerdictOnAFileRewrittenSinceItsEventWaitsForTheNextSave) {
  StartOne("settle: 0s");
  Save(P("best.h5"), 100);
  Pass(milliseconds(1));
  env_.Advance(milliseconds(5));
  env_.Write(P("best.h5"), 0);  // the next save truncated it; its close has not come yet
  Answer(Verdict::kEmpty, 0);
  EXPECT_TRUE(Verdicts(P("best.h5")).empty());
  EXPECT_TRUE(reporter_.failures.empty());
  env_.Write(P("best.h5"), 300);
  Event(Kind::kFileWritten, P("best.h5"));
  Pass(milliseconds(1));
  Answer(Verdict::kOk, 300);
  EXPECT_EQ(Verdicts(P("best.h5")).size(), 1u);
}

TEST_F(PipelineSaves, FreeSpaceIsTakenWhenTheWriterClosedNotWhenTheVerdictCame) {
  StartOne("settle: 1s");
  env_.space = {4096, std::uint64_t{4} << 20};  // full when h5py got ENOSPC and closed
  Save(P("a.h5"), 500);
  env_.space = {std::uint64_t{3} << 20, std::uint64_t{4} << 20};  // the trainer deleted files since
  Pass(seconds(1));
  Answer(Verdict::kInProgress, 500);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "disk_full");
  EXPECT_EQ(Verdicts(P("a.h5"))[0].fields.at("avail_bytes"), "4096");
  EXPECT_EQ(reporter_.failures["run/disk_full"], 1);
}

// Free space explains a failed save; an ok verdict's line carries none, so it looks at none (in
// a 512-shard save, seven system calls per file).
TEST_F(PipelineSaves, OnlyAFailedSaveLooksAtFreeSpaceAgainWhenItsVerdictComes) {
  StartOne("settle: 0s");
  Save(P("a.h5"), 500);
  Pass(milliseconds(1));
  const int at_close = env_.space_looks;
  EXPECT_EQ(at_close, 1);  // the close: what the disk looked like when the writer finished
  Answer(Verdict::kOk, 500);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(env_.space_looks, at_close);
  EXPECT_FALSE(Verdicts(P("a.h5"))[0].fields.count("avail_bytes"));
  Save(P("b.h5"), 500);
  Pass(milliseconds(1));
  const int before = env_.space_looks;
  Answer(Verdict::kTruncated, 500, "file ends early");
  ASSERT_EQ(Verdicts(P("b.h5")).size(), 1u);
  EXPECT_EQ(env_.space_looks, before + 1);
  EXPECT_EQ(Verdicts(P("b.h5"))[0].fields.at("avail_bytes"), std::to_string(env_.space.avail));
}

TEST_F(PipelineSaves, TheSameFailureAgainIsOneLineAndACountPerRepeatInterval) {
  StartOne("settle: 0s", "log: {repeat_every: 10m}\n");
  for (int epoch = 0; epoch < 5; ++epoch) {  // a rewrite in place every minute, truncated each time
    Save(P("best.h5"), 1000 + epoch);
    Pass(milliseconds(1));
    Answer(Verdict::kTruncated, 1000 + epoch);
    Pass(seconds(60));
  }
  EXPECT_EQ(Verdicts(P("best.h5")).size(), 1u);
  EXPECT_EQ(reporter_.failures["run/truncated"], 5) << "the counter counts every save";
  Pass(seconds(6 * 60));
  Save(P("best.h5"), 2000);
  Pass(milliseconds(1));
  Answer(Verdict::kTruncated, 2000);
  ASSERT_EQ(Verdicts(P("best.h5")).size(), 2u);
  EXPECT_NE(Verdicts(P("best.h5"))[1].msg.find("(again, ×6 since "), std::string::npos)
      << Verdicts(P("best.h5"))[1].msg;
  EXPECT_EQ(Verdicts(P("best.h5"))[1].fields.at("repeats"), "6");
  // An ok verdict ends the run of failures: the next one is new.
  Save(P("best.h5"), 3000);
  Pass(milliseconds(1));
  Answer(Verdict::kOk, 3000);
  Save(P("best.h5"), 3001);
  Pass(milliseconds(1));
  Answer(Verdict::kTruncated, 3001);
  ASSERT_EQ(Verdicts(P("best.h5")).size(), 4u);
  EXPECT_EQ(Verdicts(P("best.h5"))[3].msg.find("again"), std::string::npos);
}

TEST_F(PipelineSaves, AKilledWriterLeavesATruncatedFile) {
  StartOne("settle: 0s");
  Save(P("a.h5"), 1 << 20);
  Pass(milliseconds(1));
  Answer(Verdict::kTruncated, 1 << 20, "file ends early");
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "truncated");
  EXPECT_EQ(Verdicts(P("a.h5"))[0].line_level, LogLevel::kError);
}

TEST_F(PipelineSaves, ASaveCutShortByAFullDiskIsDiskFull) {
  StartOne("settle: 0s");
  env_.space = {4096, std::uint64_t{4} << 20};
  Save(P("a.h5"), 3 << 20);
  Pass(milliseconds(1));
  VerifyJob job = Jobs()[0];
  Jobs().clear();
  VerifyResult result;
  result.path = job.path;
  result.verdict = Verdict::kTruncated;
  result.bytes = 3 << 20;
  result.expected_bytes = 5 << 20;
  result.reason = "file ends at 3 MiB, superblock says 5 MiB";
  pipeline_->OnVerified(job, result);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "disk_full");
  EXPECT_EQ(reporter_.failures["run/disk_full"], 1);
}

TEST_F(PipelineSaves, AFileTruncatedAfterItsVerdictIsVerifiedAgainByARescan) {
  StartOne("settle: 0s");
  Save(P("a.h5"), 5000);
  Pass(milliseconds(1));
  Answer(Verdict::kOk, 5000);
  env_.Advance(seconds(1));
  env_.Write(P("a.h5"), 100);  // truncate(2): no close-write, seen by the next rescan
  Event(Kind::kOverflow, kRoot);
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kTruncated, 100);
  EXPECT_EQ(Verdicts(P("a.h5")).size(), 2u);
}

TEST_F(PipelineSaves, OverflowRescanVerifiesOnlyWhatChanged) {
  StartOne("settle: 0s");
  Save(P("a.h5"));
  Pass(milliseconds(1));
  AnswerAllOk();
  env_.Write(P("b.h5"), 10);  // written while events were lost
  Event(Kind::kOverflow, kRoot);
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].path, P("b.h5"));
  EXPECT_EQ(reporter_.rescans["run/overflow"], 1);
  ASSERT_EQ(reporter_.RescanLines().size(), 1u);
  EXPECT_EQ(reporter_.RescanLines()[0].changed, 1u);
}

TEST_F(PipelineSaves, ARescanAskedForDuringAScanRunsAfterItWithItsOwnReason) {
  env_.MakeDir(kRoot);
  Load(Watch("run", kRoot, "settle: 0s"), "", &config_);
  pipeline_ = std::make_unique<Pipeline>(config_, env_, &watcher_, scanner_, verifier_, judge_, reporter_);
  pipeline_->Start();
  ASSERT_EQ(scanner_.requests.size(), 1u);  // the start scan, still running
  Event(Kind::kOverflow, kRoot);            // FinishScans() completes the start scan
  EXPECT_TRUE(scanner_.requests.empty());
  Ticks(1);
  EXPECT_EQ(reporter_.rescans["run/overflow"], 1);
}

TEST_F(PipelineSaves, OrbaxTempDirectoryRenamedIntoPlaceGetsVerdictsUnderTheFinalNames) {
  StartOne("settle: 200ms, recursive: true");
  env_.MakeDir(P("ckpt_100.orbax-checkpoint-tmp-1234"));
  Event(Kind::kDirectoryCreated, P("ckpt_100.orbax-checkpoint-tmp-1234"));
  env_.MakeDir(P("ckpt_100"));
  env_.Write(P("ckpt_100/params.h5"), 100);
  env_.Write(P("ckpt_100/opt.h5"), 200);
  env_.RemoveDir(P("ckpt_100.orbax-checkpoint-tmp-1234"));
  Event(Kind::kDirectoryCreated, P("ckpt_100"));  // the rename into place: a scan finds the files
  Pass(seconds(1));
  std::set<std::string> paths;
  for (const VerifyJob& job : Jobs()) paths.insert(job.path);
  EXPECT_EQ(paths, (std::set<std::string>{P("ckpt_100/opt.h5"), P("ckpt_100/params.h5")}));
  EXPECT_EQ(Jobs().size(), 2u);
  EXPECT_TRUE(reporter_.Events(LogEvent::kScanFailed).empty()) << "the vanished temp directory is not an error";
}

// A saver with a staging name ckptwatch does not know (not excluded): its files are written and
// even dispatched under the staging name, then the directory is renamed into place. Nothing is a
// failed save because it moved; every file gets its verdict under the name a loader will use.
TEST_F(PipelineSaves, StagingDirectoryRenamedIntoPlaceIsNoFailedSave) {
  StartOne("settle: 200ms, recursive: true");
  env_.MakeDir(P("stage-5"));
  Event(Kind::kDirectoryCreated, P("stage-5"));
  Save(P("stage-5/model-00001-of-00002.safetensors"));
  Pass(seconds(1));  // dispatched: its verification is under way
  ASSERT_EQ(Jobs().size(), 1u);
  Save(P("stage-5/model-00002-of-00002.safetensors"));  // still settling
  env_.MakeDir(P("checkpoint-5"));
  env_.Rename(P("stage-5/model-00001-of-00002.safetensors"), P("checkpoint-5/model-00001-of-00002.safetensors"));
  env_.Rename(P("stage-5/model-00002-of-00002.safetensors"), P("checkpoint-5/model-00002-of-00002.safetensors"));
  env_.RemoveDir(P("stage-5"));
  WatchEvent gone;
  gone.kind = Kind::kNameGone;
  gone.watch_id = watcher_.IdOf(kRoot);
  gone.path = P("stage-5");
  gone.moved_to = P("checkpoint-5");
  pipeline_->OnWatchEvent(gone);
  Event(Kind::kDirectoryCreated, P("checkpoint-5"));
  Answer(Verdict::kNotFound);  // the verification under the old name finds nothing there
  Pass(seconds(1));
  std::set<std::string> paths;
  for (const VerifyJob& job : Jobs()) paths.insert(job.path);
  EXPECT_EQ(paths, (std::set<std::string>{P("checkpoint-5/model-00001-of-00002.safetensors"),
                                          P("checkpoint-5/model-00002-of-00002.safetensors")}));
  AnswerAllOk();
  Pass(seconds(5));
  EXPECT_TRUE(Jobs().empty()) << "the settling file was not verified under its old name";
  EXPECT_TRUE(reporter_.failures.empty());
  EXPECT_TRUE(Verdicts(P("stage-5/model-00001-of-00002.safetensors")).empty());
  EXPECT_EQ(Verdicts(P("checkpoint-5/model-00001-of-00002.safetensors")).size(), 1u);
  EXPECT_EQ(Verdicts(P("checkpoint-5/model-00002-of-00002.safetensors")).size(), 1u);
}

// The scan of a new staging directory lists it under the name it had when the scan opened it;
// renamed into place while the scan ran, those names are gone and its files are not_found —
// a false page. The new name's own directory event scans it again.
TEST_F(PipelineSaves, AScanOfADirectoryRenamedWhileItRanIsDropped) {
  StartOne("settle: 200ms, recursive: true");
  env_.MakeDir(P("ckpt-5.saving"));
  Save(P("ckpt-5.saving/optimizer.pt"));
  WatchEvent created;
  created.kind = Kind::kDirectoryCreated;
  created.watch_id = watcher_.IdOf(kRoot);
  created.path = P("ckpt-5.saving");
  pipeline_->OnWatchEvent(created);  // its scan starts, and lists the directory as it is now
  ASSERT_EQ(scanner_.requests.size(), 1u);
  ScanResult stale;
  stale.request = scanner_.requests.front();
  scanner_.requests.clear();
  stale.ok = true;
  stale.snapshot = env_.List(kRoot, "ckpt-5.saving", true);
  ASSERT_EQ(stale.snapshot.files.size(), 1u);
  env_.MakeDir(P("checkpoint-5"));  // renamed into place while the scan ran
  env_.Rename(P("ckpt-5.saving/optimizer.pt"), P("checkpoint-5/optimizer.pt"));
  env_.RemoveDir(P("ckpt-5.saving"));
  WatchEvent gone;
  gone.kind = Kind::kNameGone;
  gone.watch_id = watcher_.IdOf(kRoot);
  gone.path = P("ckpt-5.saving");
  gone.moved_to = P("checkpoint-5");
  pipeline_->OnWatchEvent(gone);
  Event(Kind::kDirectoryCreated, P("checkpoint-5"));
  pipeline_->OnScanDone(stale);  // the old name's scan ends last
  Pass(seconds(1));
  std::set<std::string> paths;
  for (const VerifyJob& job : Jobs()) paths.insert(job.path);
  EXPECT_EQ(paths, (std::set<std::string>{P("checkpoint-5/optimizer.pt")}));
  AnswerAllOk();
  Pass(seconds(5));
  EXPECT_TRUE(Jobs().empty());
  EXPECT_TRUE(reporter_.failures.empty());
}

// A file deleted before its verdict is not a rename: it still says not_found.
TEST_F(PipelineSaves, ACheckpointDeletedBeforeItsVerdictIsStillNotFound) {
  StartOne("settle: 200ms");
  Save(P("epoch_1.h5"));
  Pass(seconds(1));
  env_.Remove(P("epoch_1.h5"));
  Event(Kind::kNameGone, P("epoch_1.h5"));
  Answer(Verdict::kNotFound);
  ASSERT_EQ(Verdicts(P("epoch_1.h5")).size(), 1u);
  EXPECT_EQ(VerdictName(Verdicts(P("epoch_1.h5"))[0].verdict), "not_found");
}

// Hugging Face Trainer stages a save as tmp-checkpoint-N and renames it: excluded by default.
TEST_F(PipelineSaves, HuggingFaceStagingDirectoryIsExcludedByDefault) {
  StartOne("settle: 200ms, recursive: true");
  env_.MakeDir(P("tmp-checkpoint-5"));
  Event(Kind::kDirectoryCreated, P("tmp-checkpoint-5"));
  Save(P("tmp-checkpoint-5/model.safetensors"));
  Pass(seconds(1));
  EXPECT_TRUE(Jobs().empty());
}

TEST_F(PipelineSaves, AtStartOnlyTheNewestCheckpointIsVerified) {
  env_.MakeDir(kRoot);
  env_.Write(P("old.h5"), 1);
  env_.Advance(seconds(5));
  env_.Write(P("new.h5"), 2);
  StartOne("settle: 0s");
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].path, P("new.h5"));
}

// The first scan lists a file whose save began while it ran: that save's own events decide its
// look (its close), not the scan's "newest file" — a look at it now would call it hung.
TEST_F(PipelineSaves, ASaveBegunDuringTheFirstScanWaitsForItsClose) {
  StartOneHoldingFirstScan("settle: 0s, stuck_after: 2m");
  env_.open_for_writing[P("a.h5")] = "pid 77 (python3)";
  env_.Write(P("a.h5"), 300);
  Event(WatchEvent::Kind::kFileWriting, P("a.h5"));  // the scan ends after it, listing a.h5
  Pass(seconds(20));
  EXPECT_TRUE(Jobs().empty()) << "a save under way waits for its close";
  EXPECT_TRUE(Verdicts(P("a.h5")).empty()) << Verdicts(P("a.h5"))[0].msg;
  env_.open_for_writing.clear();
  Save(P("a.h5"), 900);
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kOk, 900);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(VerdictName(Verdicts(P("a.h5"))[0].verdict), "ok");
}

// A directory created while the first scan ran is new, and so is everything in it — files
// renamed into it right after its mkdir made no event of their own (its inotify watch came
// later). The first scan listed them too: that must not make them history.
TEST_F(PipelineSaves, FilesOfADirectoryCreatedDuringTheFirstScanAreAllVerified) {
  StartOneHoldingFirstScan("settle: 0s, recursive: true");
  env_.MakeDir(P("save0"));
  for (int i = 0; i < 4; ++i) env_.Write(P("save0/model-" + std::to_string(i) + ".safetensors"), 100 + i);
  Event(Kind::kDirectoryCreated, P("save0"));  // the first scan ends after it, listing save0/*
  Pass(milliseconds(1));
  std::set<std::string> paths;
  for (const VerifyJob& job : Jobs()) paths.insert(job.path);
  EXPECT_EQ(paths.size(), 4u) << "every file of the new directory is verified";
}

TEST_F(PipelineSaves, AFullVerifyQueueHoldsFilesUntilThereIsRoom) {
  verifier_.capacity = 1;
  StartOne("settle: 0s");
  Save(P("a.h5"));
  Save(P("b.h5"));
  Save(P("c.h5"));
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(reporter_.Events(LogEvent::kQueueFull).size(), 1u);
  AnswerAllOk();  // each verdict frees the place the next file takes
  AnswerAllOk();
  AnswerAllOk();
  for (const char* name : {"a.h5", "b.h5", "c.h5"}) EXPECT_EQ(Verdicts(P(name)).size(), 1u) << name;
  EXPECT_TRUE(reporter_.rescans.empty()) << "nothing was dropped, so nothing to rescan";
}

TEST_F(PipelineSaves, JobsCarryTheWatchLevelAndLimits) {
  StartOne("settle: 0s, level: full", "verify: {full_max_bytes: 1GiB, memory_limit: 512MiB}\n");
  Save(P("a.h5"));
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].options.level, Level::kFull);
  EXPECT_EQ(Jobs()[0].options.full_max_bytes, std::uint64_t{1} << 30);
  EXPECT_EQ(Jobs()[0].options.memory_budget, std::uint64_t{256} << 20);
}

TEST_F(PipelineSaves, PollingSeesAFileOnceItsSizeAndMtimeSettle) {
  StartOne("settle: 2s, backend: poll, poll_interval: 1s");
  EXPECT_EQ(reporter_.backends["run"], "poll");
  EXPECT_TRUE(watcher_.watches.empty());
  env_.Write(P("a.h5"), 100);
  Ticks(1);
  env_.Write(P("a.h5"), 200);  // still growing
  Ticks(2);
  EXPECT_TRUE(Jobs().empty());
  Ticks(3);
  Pass(seconds(3));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kOk, 200);
  Ticks(5);
  Pass(seconds(3));
  EXPECT_TRUE(Jobs().empty()) << "reported again without a change";
}

TEST_F(PipelineSaves, ANetworkFilesystemIsPolledOnAuto) {
  env_.network = true;
  StartOne();
  EXPECT_EQ(reporter_.backends["run"], "poll");
  ASSERT_EQ(reporter_.Events(LogEvent::kWatchStarted).size(), 1u);
  EXPECT_EQ(reporter_.Events(LogEvent::kWatchStarted)[0].fields.at("fs"), "nfs");
}

TEST_F(PipelineSaves, RunningOutOfInotifyWatchesFallsBackToPolling) {
  watcher_.fail_with = ENOSPC;
  StartOne();
  EXPECT_EQ(reporter_.backends["run"], "poll");
  EXPECT_EQ(reporter_.Events(LogEvent::kBackendFallback).size(), 1u);
}

TEST_F(PipelineSaves, AfterStopNothingIsDispatched) {
  StartOne("settle: 0s");
  Save(P("a.h5"));
  pipeline_->Stop();
  Pass(seconds(1));
  EXPECT_TRUE(Jobs().empty());
  EXPECT_FALSE(pipeline_->NextDeadline());
}

}  // namespace
}  // namespace ckptwatch::testing
