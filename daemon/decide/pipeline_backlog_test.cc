// Nothing silently missed: backpressure instead of drops, directories without
// an inotify watch, staging directories, and state that goes when files go.
#include <map>
#include <set>

#include "decide/pipeline_test_util.h"

namespace ckptwatch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = WatchEvent::Kind;

class PipelineBacklog : public PipelineTest {};

std::string Name(int i) { return "f" + std::to_string(i) + ".h5"; }

TEST_F(PipelineBacklog, ThreeThousandFilesIntoAQueueOfFiveHundredEachGetOneVerdict) {
  verifier_.capacity = 500;
  StartOne("settle: 0s", "verify: {queue_limit: 500}\n");
  for (int i = 0; i < 3000; ++i) Save(P(Name(i)), 100 + i);
  Pass(milliseconds(1));
  EXPECT_EQ(Jobs().size(), 500u);
  EXPECT_EQ(reporter_.queue_length, 3000u) << "waiting files count as queued";
  std::size_t answered = 0;
  while (!Jobs().empty()) {
    Answer(Verdict::kOk);
    ++answered;
  }
  EXPECT_EQ(answered, 3000u);
  std::map<std::string, int> verdicts;
  for (const auto& line : reporter_.lines)
    if (line.event == LogEvent::kVerify) ++verdicts[line.fields.at("path")];
  ASSERT_EQ(verdicts.size(), 3000u);
  for (const auto& [path, n] : verdicts) EXPECT_EQ(n, 1) << path;
  EXPECT_EQ(reporter_.queue_length, 0u);
}

TEST_F(PipelineBacklog, APathRewrittenWhileWaitingForTheQueueIsVerifiedOnceForItsLastWrite) {
  verifier_.capacity = 1;
  StartOne("settle: 1s");
  Save(P("a.h5"));
  Save(P("b.h5"), 100);
  Pass(seconds(1));
  ASSERT_EQ(Jobs().size(), 1u);  // b waits
  Save(P("b.h5"), 200);          // rewritten while it waited
  AnswerAllOk();
  Pass(seconds(2));
  AnswerAllOk();
  EXPECT_EQ(Verdicts(P("b.h5")).size(), 1u);
}

TEST_F(PipelineBacklog, PastThePendingBoundWritesAreFoundAgainByARescanNotLost) {
  verifier_.capacity = 2;
  limits_.max_pending_per_watch = 10;
  StartOne("settle: 0s");
  for (int i = 0; i < 40; ++i) Save(P(Name(i)), 100 + i);
  EXPECT_EQ(reporter_.Events(LogEvent::kQueueFull).size(), 1u);
  for (int round = 0; round < 30; ++round) {
    Pass(milliseconds(1));
    while (!Jobs().empty()) Answer(Verdict::kOk);
    Ticks(1);
  }
  for (int i = 0; i < 40; ++i) EXPECT_EQ(Verdicts(P(Name(i))).size(), 1u) << Name(i);
  EXPECT_GE(reporter_.rescans["run/queue_full"], 1);
}

TEST_F(PipelineBacklog, OrbaxStagingDirectoryIsNotVerifiedItsRenameIntoPlaceIsOnce) {
  StartOne("settle: 200ms, recursive: true");
  const std::string tmp = P("ckpt_100.orbax-checkpoint-tmp-1234");
  env_.MakeDir(tmp);
  Event(Kind::kDirectoryCreated, tmp);
  for (const char* f : {"params.h5", "opt.h5"}) Save(tmp + "/" + f, 100);
  Pass(seconds(1));
  EXPECT_TRUE(Jobs().empty()) << "a file in the staging directory was verified";
  env_.MakeDir(P("ckpt_100"));
  for (const char* f : {"params.h5", "opt.h5"}) env_.Rename(tmp + "/" + f, P("ckpt_100/") + f);
  env_.RemoveDir(tmp);
  Event(Kind::kNameGone, tmp);
  Event(Kind::kDirectoryCreated, P("ckpt_100"));
  Pass(seconds(1));
  std::multiset<std::string> paths;
  for (const VerifyJob& job : Jobs()) paths.insert(job.path);
  EXPECT_EQ(paths, (std::multiset<std::string>{P("ckpt_100/opt.h5"), P("ckpt_100/params.h5")}));
  AnswerAllOk();
  EXPECT_EQ(reporter_.verified["run/ok"], 2);
}

TEST_F(PipelineBacklog, ExcludeGlobsAreTheWatchsOwnAndMatchFilesToo) {
  StartOne("settle: 0s, exclude: [\"scratch\", \"*.partial.h5\"]");
  Save(P("a.partial.h5"));
  Save(P("a.h5"));
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].path, P("a.h5"));
}

TEST_F(PipelineBacklog, ANonRecursiveWatchIgnoresASubdirectoryMovedIntoIt) {
  StartOne("settle: 0s");
  env_.MakeDir(P("old_run"));
  env_.Write(P("old_run/model.h5"), 100);
  Event(Kind::kDirectoryCreated, P("old_run"));  // mv old_run into the watch
  Pass(seconds(1));
  EXPECT_TRUE(Jobs().empty());
  EXPECT_TRUE(scanner_.requests.empty());
  Event(Kind::kOverflow, kRoot);  // nor does a rescan reach into it
  Pass(seconds(1));
  EXPECT_TRUE(Jobs().empty());
}

TEST_F(PipelineBacklog, ADirectoryWithoutAnInotifyWatchIsPolledAndIsAProblem) {
  StartOne("settle: 0s, recursive: true, poll_interval: 5s");
  env_.MakeDir(P("run7"));
  WatchEvent failed;
  failed.kind = Kind::kWatchFailed;
  failed.watch_id = watcher_.IdOf(kRoot);
  failed.path = P("run7");
  failed.reason = "cannot watch /ckpt/run7: inotify watch limit reached (fs.inotify.max_user_watches = 8192)";
  pipeline_->OnWatchEvent(failed);
  FinishScans();
  EXPECT_TRUE(reporter_.problems["run/degraded_watching"]);
  ASSERT_EQ(reporter_.Problems(/*started=*/true).size(), 1u);
  EXPECT_NE(reporter_.Problems(/*started=*/true)[0].reason.find("max_user_watches"), std::string::npos);
  // A file written there makes no event; the poll finds it.
  env_.Write(P("run7/e1.h5"), 300);
  Ticks(6);
  Ticks(6);
  Pass(seconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].path, P("run7/e1.h5"));
  AnswerAllOk();
  Ticks(12);
  EXPECT_TRUE(Jobs().empty()) << "verified again without a change";
  // The directory goes: nothing left unwatched, the problem clears.
  env_.RemoveDir(P("run7"));
  Event(Kind::kNameGone, P("run7"));
  EXPECT_FALSE(reporter_.problems["run/degraded_watching"]);
}

TEST_F(PipelineBacklog, FilesAlreadyInAnUnwatchedDirectoryAreVerifiedByItsFirstPoll) {
  StartOne("settle: 0s, recursive: true, poll_interval: 5s");
  env_.MakeDir(P("run8"));
  env_.Write(P("run8/early.h5"), 10);  // written before the failed watch was noticed
  WatchEvent failed;
  failed.kind = Kind::kWatchFailed;
  failed.watch_id = watcher_.IdOf(kRoot);
  failed.path = P("run8");
  failed.reason = "cannot watch";
  pipeline_->OnWatchEvent(failed);
  FinishScans();
  Pass(seconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].path, P("run8/early.h5"));
}

TEST_F(PipelineBacklog, RunningOutOfWatchesAtStartIsAProblemToo) {
  watcher_.fail_with = ENOSPC;
  StartOne();
  EXPECT_TRUE(reporter_.problems["run/degraded_watching"]);
}

TEST_F(PipelineBacklog, ADeletedFileLeavesNothingBehind) {
  StartOne("settle: 0s");
  Save(P("a.h5"));
  Pass(milliseconds(1));
  Answer(Verdict::kTruncated);
  env_.Remove(P("a.h5"));
  Event(Kind::kNameGone, P("a.h5"));
  // Same name, same size and mtime is impossible in life; here it shows the
  // old verdict is gone: the new file is verified and its failure is new.
  Save(P("a.h5"));
  Pass(milliseconds(1));
  Answer(Verdict::kTruncated);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 2u);
  EXPECT_EQ(Verdicts(P("a.h5"))[1].msg.find("again"), std::string::npos);
}

TEST_F(PipelineBacklog, RememberedVerdictsAreBounded) {
  limits_.max_remembered_per_watch = 5;
  StartOne("settle: 0s");
  for (int i = 0; i < 20; ++i) {
    Save(P(Name(i)));
    Pass(milliseconds(1));
    AnswerAllOk();
  }
  // The newest are remembered: a close without a write is skipped.
  Event(Kind::kFileWritten, P(Name(19)));
  Pass(milliseconds(1));
  EXPECT_TRUE(Jobs().empty());
  // The oldest were forgotten: its close is verified again (harmless).
  Event(Kind::kFileWritten, P(Name(0)));
  Pass(milliseconds(1));
  EXPECT_EQ(Jobs().size(), 1u);
}

TEST_F(PipelineBacklog, ARestartReportsNothingOldAndVerifiesOnlyWhatChanged) {
  env_.MakeDir(kRoot);
  env_.Write(P("good.h5"), 20);
  env_.Write(P("bad.h5"), 10);
  env_.Advance(seconds(1));
  env_.Write(P("later.h5"), 30);  // the newest: verified at start
  StartOne("settle: 0s");
  Event(Kind::kFileWritten, P("bad.h5"));
  Event(Kind::kFileWritten, P("good.h5"));
  Pass(milliseconds(1));
  // Answered newest first, so no good save is newer than the failure when it is reported.
  std::sort(Jobs().begin(), Jobs().end(), [](const VerifyJob& a, const VerifyJob& b) { return a.path > b.path; });
  while (!Jobs().empty()) Answer(Jobs().front().path == P("bad.h5") ? Verdict::kTruncated : Verdict::kOk);
  ASSERT_EQ(reporter_.failing["run/truncated"], 1u);
  const SavedState saved = pipeline_->Saved();
  ASSERT_EQ(saved.watches.at("run").files.size(), 3u);  // later.h5 was the newest at start
  // The daemon restarts; meanwhile later.h5 was rewritten and new.h5 written.
  pipeline_.reset();
  reporter_ = FakeReporter{};
  watcher_ = FakeWatcher{};
  env_.Advance(seconds(10));
  env_.Write(P("later.h5"), 31);
  env_.Write(P("new.h5"), 40);
  restore_ = saved;
  StartOne("settle: 0s");
  Pass(milliseconds(1));
  std::set<std::string> verified;
  for (const VerifyJob& job : Jobs()) verified.insert(job.path);
  EXPECT_EQ(verified, (std::set<std::string>{P("later.h5"), P("new.h5")}));
  AnswerAllOk();
  EXPECT_TRUE(reporter_.failures.empty()) << "an old failure was reported again";
  ASSERT_EQ(reporter_.Events(LogEvent::kStateRestored).size(), 1u);
  EXPECT_EQ(reporter_.Events(LogEvent::kStateRestored)[0].fields.at("failing"), "1");
}

TEST_F(PipelineBacklog, ARestoredFailureStaysFailingUntilANewerGoodSaveAndAgainIsARepeat) {
  env_.MakeDir(kRoot);
  env_.Write(P("bad.h5"), 10);
  StartOne("settle: 0s");
  Pass(milliseconds(1));
  Answer(Verdict::kTruncated);
  const SavedState saved = pipeline_->Saved();
  pipeline_.reset();
  reporter_ = FakeReporter{};
  watcher_ = FakeWatcher{};
  restore_ = saved;
  StartOne("settle: 0s");
  Ticks(1);
  EXPECT_EQ(reporter_.failing["run/truncated"], 1u) << "a restart resolved nothing";
  EXPECT_TRUE(reporter_.failures.empty()) << "an old failure was reported again";
  // The known failure failing again is a repeat, not a new story.
  Save(P("bad.h5"), 11);
  Pass(milliseconds(1));
  Answer(Verdict::kTruncated);
  ASSERT_EQ(Verdicts(P("bad.h5")).size(), 1u);
  EXPECT_NE(Verdicts(P("bad.h5"))[0].msg.find("again, ×2"), std::string::npos);
  // A newer good save ends it.
  env_.Advance(seconds(5));
  Save(P("next.h5"), 12);
  Pass(milliseconds(1));
  Answer(Verdict::kOk);
  EXPECT_EQ(reporter_.failing["run/truncated"], 0u);
  const StatusSnapshot status = pipeline_->CurrentStatus();
  EXPECT_EQ(status.watches[0].failing_total, 0u);
  ASSERT_EQ(status.watches[0].resolved.size(), 1u);
  EXPECT_EQ(status.watches[0].resolved[0].path, P("bad.h5"));
  EXPECT_EQ(status.watches[0].resolved[0].resolved_by, P("next.h5"));
  EXPECT_TRUE(status.AllWell());
  const SavedState after = pipeline_->Saved();
  EXPECT_EQ(after.watches.at("run").files.size(), 2u);
  for (const SavedFile& f : after.watches.at("run").files) EXPECT_EQ(f.cause, "") << f.path;
}

TEST_F(PipelineBacklog, StateSavedForAnotherRootIsNotUsed) {
  env_.MakeDir(kRoot);
  env_.Write(P("a.h5"), 10);
  SavedState saved;
  saved.watches["run"].path = "/elsewhere";
  saved.watches["run"].files.push_back({P("a.h5"), env_.files().at(P("a.h5")).stat, "ok", "", 0});
  restore_ = saved;
  StartOne("settle: 0s");
  Pass(milliseconds(1));
  EXPECT_EQ(Jobs().size(), 1u) << "the newest file is verified, as on a first start";
}

}  // namespace
}  // namespace ckptwatch::testing
