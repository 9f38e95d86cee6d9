// Incomplete files through the pipeline in virtual time: a save under way or a failed one —
// the close, the second look, a writer that holds the file, hangs, dies or comes back
// (docs/reliability.md, "When a save has failed").
#include "decide/pipeline_test_util.h"

namespace ckptwatch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class PipelineWriters : public PipelineTest {
 protected:
  // `path` (`size` bytes) as the rescan after an inotify overflow finds it, no close seen, and
  // dispatched at once (settle 0s).
  void FoundByARescan(const std::string& path, std::uint64_t size) {
    env_.Write(path, size);
    Event(WatchEvent::Kind::kOverflow, kRoot);
    Pass(milliseconds(1));
  }
};

TEST_F(PipelineWriters, AnEmptyFileItsWriterClosedFailsAfterAMoment) {
  StartOne("settle: 0s");
  Save(P("a.h5"), 0);  // closed with nothing written, and nobody has it open
  Pass(milliseconds(1));
  Answer(Verdict::kEmpty, 0);
  // A close, then an O_TRUNC reopen is how HDF5 starts a save: a moment more.
  EXPECT_TRUE(Verdicts(P("a.h5")).empty());
  Pass(seconds(2));
  Answer(Verdict::kEmpty, 0, "file is empty (0 bytes) (disk full, or the process died at the start of the save?)");
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "writer_died");
  EXPECT_EQ(Verdicts(P("a.h5"))[0].msg.find("disk full"), std::string::npos)
      << "one cause, not a guess at two: " << Verdicts(P("a.h5"))[0].msg;
  EXPECT_EQ(reporter_.failures["run/writer_died"], 1);
}

TEST_F(PipelineWriters, PollingGivesAnEmptyFileASecondLookBecauseNoCloseIsSeen) {
  StartOne("settle: 0s, backend: poll, poll_interval: 1s");
  env_.Write(P("a.h5"), 0);
  Ticks(2);
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kEmpty, 0);
  EXPECT_EQ(reporter_.Events(LogEvent::kVerifyDeferred).size(), 1u);
  EXPECT_TRUE(Verdicts(P("a.h5")).empty());
  Pass(milliseconds(1999));
  EXPECT_TRUE(Jobs().empty());
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kEmpty, 0);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "writer_died");
}

TEST_F(PipelineWriters, AnIncompleteFileItsWriterClosedFailsAtOnceNotAfterATimeout) {
  StartOne("settle: 1s", "verify: {timeout: 5m}\n");
  Save(P("a.h5"), 500);
  Pass(seconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kInProgress, 500, "superblock says a writer has it open");
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u) << "reported within settle of the close";
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "writer_died");
  EXPECT_EQ(Verdicts(P("a.h5"))[0].line_level, LogLevel::kError);
  EXPECT_EQ(reporter_.failures["run/writer_died"], 1);
}

TEST_F(PipelineWriters, AFileAWriterStillHoldsOpenIsLookedAtAgainAfterStuckAfter) {
  StartOne("settle: 0s, stuck_after: 30s", "verify: {timeout: 5m}\n");
  env_.open_for_writing[P("a.h5")] = "pid 77 (python3)";
  Save(P("a.h5"), 500);  // another descriptor closed; the writer's is still open
  Pass(milliseconds(1));
  Answer(Verdict::kInProgress, 500);
  ASSERT_EQ(reporter_.Events(LogEvent::kVerifyDeferred).size(), 1u);
  EXPECT_NE(reporter_.Events(LogEvent::kVerifyDeferred)[0].msg.find("pid 77 (python3)"), std::string::npos);
  Pass(seconds(29));
  EXPECT_TRUE(Jobs().empty());
  Pass(seconds(2));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kInProgress, 500);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "stuck");
  EXPECT_NE(Verdicts(P("a.h5"))[0].msg.find("still open for writing by pid 77"), std::string::npos);
}

TEST_F(PipelineWriters,
       AWriterThatHangsWithTheFileOpenIsReportedOnceAfterStuckAfterThenItsCloseResolvesIt) {
  StartOne("settle: 0s, stuck_after: 3s");
  env_.open_for_writing[P("a.h5")] = "pid 77 (python3)";
  env_.Write(P("a.h5"), 0);
  Event(WatchEvent::Kind::kFileWriting, P("a.h5"));  // created
  for (int i = 0; i < 4; ++i) {                      // writes, each pushing the look back
    Pass(seconds(1));
    env_.Write(P("a.h5"), 100 * (i + 1));
    Event(WatchEvent::Kind::kFileWriting, P("a.h5"));
  }
  EXPECT_TRUE(Jobs().empty()) << "a save under way is not verified";
  Pass(milliseconds(2900));
  EXPECT_TRUE(Jobs().empty()) << "not silent for stuck_after yet";
  Pass(milliseconds(200));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kInProgress, 400);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u) << "the look after silence is the second: no deferral";
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "stuck");
  EXPECT_NE(Verdicts(P("a.h5"))[0].msg.find("pid 77 (python3)"), std::string::npos);
  EXPECT_EQ(reporter_.failing["run/stuck"], 1u);
  Pass(seconds(60));
  EXPECT_TRUE(Jobs().empty()) << "reported once";
  EXPECT_EQ(Verdicts(P("a.h5")).size(), 1u);

  env_.open_for_writing.clear();
  Save(P("a.h5"), 900);  // the writer woke up and closed it
  Pass(milliseconds(1));
  Answer(Verdict::kOk, 900);
  EXPECT_EQ(reporter_.failing["run/stuck"], 0u);
  const StatusSnapshot status = pipeline_->CurrentStatus();
  EXPECT_TRUE(status.AllWell());
  ASSERT_EQ(status.watches[0].resolved.size(), 1u);
  EXPECT_EQ(status.watches[0].resolved[0].cause, "stuck");
  EXPECT_EQ(status.watches[0].resolved[0].resolved_by, P("a.h5"));
}

TEST_F(PipelineWriters, AHolderTheLeaseSeesButNoWalkCanNameIsStillStuckNotDead) {
  StartOne("settle: 0s, stuck_after: 3s");
  env_.open_for_writing[P("a.h5")] = "";  // the lease says someone writes; /proc hides who
  env_.Write(P("a.h5"), 400);
  Event(WatchEvent::Kind::kFileWriting, P("a.h5"));
  Pass(seconds(3));
  Answer(Verdict::kInProgress, 400);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "stuck");
  EXPECT_NE(Verdicts(P("a.h5"))[0].msg.find("a process ckptwatch cannot name"), std::string::npos);
}

// HDF5 starts a save by opening and closing the file, then reopening it with O_TRUNC. When
// the empty file's look comes before that reopen, its second look is due in a moment; writes
// arriving meanwhile are the save under way, so that look is a first again, not a hung writer's.
TEST_F(PipelineWriters, WritesAfterAnEmptyFilesFirstLookMakeTheNextLookAFirstAgain) {
  StartOne("settle: 0s, stuck_after: 2m");
  Save(P("a.h5"), 0);  // the create-and-close before the O_TRUNC reopen
  Pass(milliseconds(1));
  Answer(Verdict::kEmpty, 0);
  ASSERT_EQ(reporter_.Events(LogEvent::kVerifyDeferred).size(), 1u);
  env_.open_for_writing[P("a.h5")] = "pid 77 (python3)";  // reopened: the save is under way
  env_.Write(P("a.h5"), 300);
  Event(WatchEvent::Kind::kFileWriting, P("a.h5"));
  Pass(seconds(20));
  EXPECT_TRUE(Jobs().empty()) << "a save under way waits for its close (or stuck_after)";
  EXPECT_TRUE(Verdicts(P("a.h5")).empty()) << "a save seconds old is not stuck: "
                                           << (Verdicts(P("a.h5")).empty() ? "" : Verdicts(P("a.h5"))[0].msg);
  EXPECT_EQ(reporter_.failing["run/stuck"], 0u);
  env_.open_for_writing.clear();
  Save(P("a.h5"), 900);
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kOk, 900);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(VerdictName(Verdicts(P("a.h5"))[0].verdict), "ok");
}

// The same reopen when the loop has not read its write events yet (a loaded host): the writer
// that holds the file now and did not at the first look is a save under way.
TEST_F(PipelineWriters, AWriterThatAppearedSinceAnEmptyFilesFirstLookIsASaveUnderWay) {
  StartOne("settle: 0s, stuck_after: 2m");
  Save(P("a.h5"), 0);
  Pass(milliseconds(1));
  Answer(Verdict::kEmpty, 0);
  ASSERT_EQ(reporter_.Events(LogEvent::kVerifyDeferred).size(), 1u);
  env_.open_for_writing[P("a.h5")] = "pid 77 (python3)";  // reopened; no event read yet
  Pass(seconds(2));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kEmpty, 0);
  EXPECT_TRUE(Verdicts(P("a.h5")).empty()) << Verdicts(P("a.h5"))[0].msg;
  ASSERT_EQ(reporter_.Events(LogEvent::kVerifyDeferred).size(), 2u);
  EXPECT_NE(reporter_.Events(LogEvent::kVerifyDeferred)[1].msg.find("looking again in 2m"), std::string::npos)
      << reporter_.Events(LogEvent::kVerifyDeferred)[1].msg;
  Pass(seconds(119));
  EXPECT_TRUE(Jobs().empty());
  Pass(seconds(2));  // the writer never wrote nor closed: now it is hung
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kEmpty, 0);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "stuck");
}

TEST_F(PipelineWriters, AWriteAfterACloseDoesNotDelayThatClosesVerdict) {
  StartOne("settle: 0s, stuck_after: 30s");
  Save(P("a.h5"), 500);
  Event(WatchEvent::Kind::kFileWriting, P("a.h5"));
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
}

TEST_F(PipelineWriters, AWriterGoneByTheSecondLookDiedMidSave) {
  StartOne("settle: 0s, stuck_after: 30s");
  env_.open_for_writing[P("a.h5")] = "pid 77 (python3)";
  Save(P("a.h5"), 500);
  Pass(milliseconds(1));
  Answer(Verdict::kInProgress, 500);
  env_.open_for_writing.clear();  // killed: its descriptor closed, with no event for an unchanged file
  Pass(seconds(31));
  Answer(Verdict::kInProgress, 500);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "writer_died");
}

TEST_F(PipelineWriters, ASaveThatProgressesBetweenLooksIsNotStuck) {
  StartOne("settle: 0s, stuck_after: 10s");
  env_.open_for_writing[P("a.h5")] = "pid 77 (python3)";
  Save(P("a.h5"), 500);
  Pass(milliseconds(1));
  Answer(Verdict::kInProgress, 500);
  env_.open_for_writing.clear();
  Save(P("a.h5"), 900);  // the writer went on and closed it
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kOk, 900);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(VerdictName(Verdicts(P("a.h5"))[0].verdict), "ok");
}

TEST_F(PipelineWriters, WithoutSightOfOtherProcessesTheCloseDecides) {
  // Under the packaged unit (ProtectProc=invisible) /proc hides the trainer.
  StartOne("settle: 0s");
  env_.writers_visible = OpenWriters::kUnknown;
  Save(P("a.h5"), 500);
  Pass(milliseconds(1));
  Answer(Verdict::kInProgress, 500);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "writer_died");
}

TEST_F(PipelineWriters, AWriterKilledAfterAFlushIsNotStorageCorruption) {
  StartOne("settle: 0s");
  Save(P("a.h5"), 9000);
  Pass(milliseconds(1));
  VerifyJob job = Jobs()[0];
  Jobs().clear();
  VerifyResult result;
  result.path = job.path;
  result.verdict = Verdict::kCorrupt;
  result.bytes = 9000;
  result.expected_bytes = 4000;  // data written after the last flush
  result.reason = "file is 9000 bytes, superblock says 4000";
  pipeline_->OnVerified(job, result);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "writer_died");
}

// h5py flushed after each layer, then SIGKILL: a readable HDF5 file of exactly the size its
// superblock records, whose Keras layers stop partway (the verifier says truncated).
void LayersMissingAfterAFlush(VerifyResult& result, std::uint64_t bytes) {
  result.verdict = Verdict::kTruncated;
  result.bytes = bytes;
  result.expected_bytes = bytes;
  result.reason = "Keras layer_names lists 6 layers but model_weights holds only the first 2";
}

TEST_F(PipelineWriters, AWriterKilledAfterPerLayerFlushesDiedItDidNotCorruptOrCutTheFile) {
  StartOne("settle: 0s");
  Save(P("a.h5"), 800408);  // the kernel's close of a killed process is a close-write
  Pass(milliseconds(1));
  AnswerWith([](VerifyResult& r) { LayersMissingAfterAFlush(r, 800408); });
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(VerdictName(Verdicts(P("a.h5"))[0].verdict), "truncated");
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "writer_died");
  EXPECT_NE(Verdicts(P("a.h5"))[0].msg.find("the writer died mid-save"), std::string::npos)
      << Verdicts(P("a.h5"))[0].msg;
  EXPECT_EQ(reporter_.failing["run/writer_died"], 1u);
}

TEST_F(PipelineWriters, LayersMissingWhileAWriterStillHoldsTheFileAreNotADeadWriter) {
  StartOne("settle: 0s");
  env_.open_for_writing[P("a.h5")] = "pid 77 (python3)";  // another descriptor closed
  Save(P("a.h5"), 800408);
  Pass(milliseconds(1));
  AnswerWith([](VerifyResult& r) { LayersMissingAfterAFlush(r, 800408); });
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "truncated");
}

TEST_F(PipelineWriters, ARescanThatFindsAFileBetweenTwoOfItsWritesWaitsForItsWriter) {
  // The inotify queue overflowed: the rescan finds a.h5 with no close seen, while its writer
  // still holds it, at a moment when it reads as truncated (libhdf5 writes the superblock's end
  // before the blocks that reach it). Not a failed save: its close brings the one verdict.
  StartOne("settle: 0s");
  env_.open_for_writing[P("a.h5")] = "pid 77 (python3)";
  FoundByARescan(P("a.h5"), 1000);
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kTruncated, 1000);
  EXPECT_TRUE(Verdicts(P("a.h5")).empty());
  ASSERT_EQ(reporter_.Events(LogEvent::kVerifyDeferred).size(), 1u);
  EXPECT_NE(reporter_.Events(LogEvent::kVerifyDeferred)[0].msg.find("pid 77 (python3)"),
            std::string::npos);
  env_.open_for_writing.erase(P("a.h5"));
  Save(P("a.h5"), 5000);
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kOk, 5000);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].verdict, Verdict::kOk);
  Pass(seconds(5));
  EXPECT_TRUE(Jobs().empty()) << "the close's verdict ends it: no look left over";
  EXPECT_EQ(reporter_.failures["run/truncated"], 0);
}

TEST_F(PipelineWriters, AFileFoundTruncatedThatItsWriterHoldsButNeverWritesIsReportedAMomentLater) {
  StartOne("settle: 0s");
  env_.open_for_writing[P("a.h5")] = "pid 77 (python3)";
  FoundByARescan(P("a.h5"), 1000);
  Answer(Verdict::kTruncated, 1000);
  EXPECT_TRUE(Verdicts(P("a.h5")).empty());
  Pass(milliseconds(1998));
  EXPECT_TRUE(Jobs().empty());
  Pass(milliseconds(2));
  ASSERT_EQ(Jobs().size(), 1u);
  Answer(Verdict::kTruncated, 1000);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(VerdictName(Verdicts(P("a.h5"))[0].verdict), "truncated");
}

TEST_F(PipelineWriters, AFileFoundTruncatedWithNobodyWritingItIsReportedAtOnce) {
  // truncate(2) by hand, or a copy cut short: no writer holds it, no second look.
  StartOne("settle: 0s");
  FoundByARescan(P("a.h5"), 1000);
  Answer(Verdict::kTruncated, 1000);
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_TRUE(reporter_.Events(LogEvent::kVerifyDeferred).empty());
}

TEST_F(PipelineWriters, BytesCutShortKeepCauseTruncatedNotAGuessAtTheWriter) {
  StartOne("settle: 0s");
  Save(P("a.h5"), 1000);
  Pass(milliseconds(1));
  AnswerWith([](VerifyResult& result) {
    result.verdict = Verdict::kTruncated;
    result.bytes = 1000;
    result.expected_bytes =
        4000;  // a copy cut, a file shrunk: the bytes alone do not name the writer
  });
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  EXPECT_EQ(Verdicts(P("a.h5"))[0].cause, "truncated");
}

TEST_F(PipelineWriters, AClosedFileWhoseWriterIsGoneIsNeverInProgress) {
  StartOne("settle: 0s");
  Save(P("a.h5"), 500);
  Pass(milliseconds(1));
  Answer(Verdict::kInProgress, 500,
         "superblock v3 says a writer has it open (or the writer died before closing it)");
  ASSERT_EQ(Verdicts(P("a.h5")).size(), 1u);
  const LoggedVerdict v = Verdicts(P("a.h5"))[0];
  EXPECT_EQ(VerdictName(v.verdict), "truncated");
  EXPECT_EQ(v.fields.at("verdict"), "truncated");
  EXPECT_EQ(v.cause, "writer_died");
  EXPECT_EQ(v.msg.find("the save never finished: superblock v3"), 0u) << v.msg;
  const StatusSnapshot status = pipeline_->CurrentStatus();
  ASSERT_EQ(status.watches[0].failing.size(), 1u);
  EXPECT_EQ(status.watches[0].failing[0].verdict, "truncated");
  EXPECT_EQ(reporter_.verified["run/in_progress"], 0);
}

}  // namespace
}  // namespace ckptwatch::testing
