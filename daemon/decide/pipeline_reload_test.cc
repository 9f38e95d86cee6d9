// SIGHUP: each reloadable key takes effect as its config row says (live, or
// by restarting the watch), proven one key at a time in virtual time.
#include "decide/pipeline_test_util.h"

namespace ckptwatch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = WatchEvent::Kind;

class PipelineReload : public PipelineTest {
 protected:
  // The watch's AddWatch calls so far: a restart adds it again.
  int adds() const { return watcher_.next_id - 1; }
};

TEST_F(PipelineReload, SettleAppliesToTheNextWrite) {
  StartOne("settle: 10s");
  ASSERT_TRUE(Reload(Watch("run", kRoot, "settle: 1s")));
  EXPECT_EQ(adds(), 1) << "settle is applied live, not by restarting the watch";
  Save(P("a.h5"));
  Pass(milliseconds(1000));
  EXPECT_EQ(Jobs().size(), 1u) << "the old 10 s settle was still in force";
}

TEST_F(PipelineReload, PatternsApplyLive) {
  StartOne("settle: 0s");
  ASSERT_TRUE(Reload(Watch("run", kRoot, "settle: 0s, patterns: [\"*.ckpt\"]")));
  Save(P("a.h5"));
  Save(P("last.ckpt"));
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].path, P("last.ckpt"));
  EXPECT_EQ(adds(), 1);
}

TEST_F(PipelineReload, LevelAppliesToTheNextJob) {
  StartOne("settle: 0s");
  ASSERT_TRUE(Reload(Watch("run", kRoot, "settle: 0s, level: header")));
  Save(P("a.h5"));
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].options.level, Level::kHeader);
}

TEST_F(PipelineReload, VerifyKeysApplyToTheNextJob) {
  StartOne("settle: 0s");
  ASSERT_TRUE(Reload(Watch("run", kRoot, "settle: 0s"), "verify: {full_max_bytes: 1MiB, level: full}\n"));
  Save(P("a.h5"));
  Pass(milliseconds(1));
  ASSERT_EQ(Jobs().size(), 1u);
  EXPECT_EQ(Jobs()[0].options.full_max_bytes, std::uint64_t{1} << 20);
  EXPECT_EQ(Jobs()[0].options.level, Level::kFull);
}

TEST_F(PipelineReload, ExpectEveryAppliesLive) {
  StartOne("settle: 0s");
  ASSERT_TRUE(Reload(Watch("run", kRoot, "settle: 0s, expect_every: 5s")));
  Ticks(6);
  EXPECT_TRUE(reporter_.problems["run/stale"]);
  ASSERT_TRUE(Reload(Watch("run", kRoot, "settle: 0s")));
  Save(P("a.h5"));
  Pass(milliseconds(1));
  Answer(Verdict::kOk);
  EXPECT_FALSE(reporter_.problems["run/stale"]);
}

TEST_F(PipelineReload, MinFreeAppliesLive) {
  StartOne("settle: 0s");
  env_.space = {std::uint64_t{50} << 30, std::uint64_t{1000} << 30};
  Ticks(1);
  EXPECT_FALSE(reporter_.problems["run/low_space"]);
  ASSERT_TRUE(Reload(Watch("run", kRoot, "settle: 0s, min_free: 10%")));
  Ticks(1);
  EXPECT_TRUE(reporter_.problems["run/low_space"]);
}

TEST_F(PipelineReload, WriterAppliesLive) {
  env_.writer_cannot_create = "cannot";
  StartOne();
  EXPECT_FALSE(reporter_.problems["run/not_writable"]);
  ASSERT_TRUE(Reload(Watch("run", kRoot, "writer: root")));
  Ticks(31);
  EXPECT_TRUE(reporter_.problems["run/not_writable"]);
}

TEST_F(PipelineReload, ReadersApplyLive) {
  StartOne("settle: 0s");
  env_.unreadable_by[P("a.h5")] = "cannot";
  ASSERT_TRUE(Reload(Watch("run", kRoot, "settle: 0s, readers: [root]")));
  Save(P("a.h5"));
  Pass(milliseconds(1));
  Answer(Verdict::kOk);
  EXPECT_TRUE(reporter_.problems["run/unreadable"]);
}

TEST_F(PipelineReload, PathRestartsTheWatchOnTheNewDirectory) {
  env_.MakeDir("/other");
  StartOne();
  ASSERT_TRUE(Reload(Watch("run", "/other", "")));
  EXPECT_EQ(watcher_.IdOf(kRoot), -1);
  EXPECT_NE(watcher_.IdOf("/other"), -1);
  EXPECT_EQ(reporter_.Events(LogEvent::kWatchStarted).size(), 2u);
}

TEST_F(PipelineReload, RecursiveRestartsTheWatch) {
  StartOne();
  ASSERT_TRUE(Reload(Watch("run", kRoot, "recursive: true")));
  EXPECT_EQ(adds(), 2);
  EXPECT_TRUE(watcher_.watches.at(watcher_.IdOf(kRoot)).recursive);
}

TEST_F(PipelineReload, BackendRestartsTheWatch) {
  StartOne();
  ASSERT_TRUE(Reload(Watch("run", kRoot, "backend: poll")));
  EXPECT_EQ(watcher_.IdOf(kRoot), -1);
  EXPECT_EQ(reporter_.backends["run"], "poll");
}

TEST_F(PipelineReload, PollIntervalAppliesLive) {
  StartOne("backend: poll, poll_interval: 1h, settle: 0s");
  ASSERT_TRUE(Reload(Watch("run", kRoot, "backend: poll, poll_interval: 1s, settle: 0s")));
  env_.Write(P("a.h5"), 1);
  Ticks(4);
  Pass(milliseconds(1));
  EXPECT_EQ(Jobs().size(), 1u);
}

TEST_F(PipelineReload, AnAddedWatchStartsAndARemovedOneStops) {
  env_.MakeDir("/b");
  StartOne();
  ASSERT_TRUE(Reload(Watch("b", "/b", "settle: 0s")));
  EXPECT_EQ(reporter_.Of<WatchRemoved>().size(), 1u);
  EXPECT_EQ(reporter_.removed, std::vector<std::string>{"run"});
  EXPECT_EQ(verifier_.dropped, std::vector<std::string>{"run"});
  EXPECT_EQ(watcher_.IdOf(kRoot), -1);
  Save("/b/x.h5");
  Event(Kind::kFileWritten, "/b/x.h5", "/b");
  Pass(milliseconds(1));
  EXPECT_FALSE(Jobs().empty());
}

TEST_F(PipelineReload, AVerdictForARemovedWatchIsIgnored) {
  env_.MakeDir("/b");
  StartOne("settle: 0s");
  Save(P("a.h5"));
  Pass(milliseconds(1));
  ASSERT_TRUE(Reload(Watch("b", "/b", "")));
  Answer(Verdict::kTruncated);
  EXPECT_TRUE(reporter_.failures.empty());
}

TEST_F(PipelineReload, AKeyThatNeedsARestartRefusesTheWholeReload) {
  StartOne("settle: 5s");
  Config next;
  Load(Watch("run", kRoot, "settle: 0s"), "", &next);
  next.metrics.listen = "127.0.0.1:20000";
  std::string err;
  EXPECT_FALSE(pipeline_->Reload(next, &err));
  EXPECT_NE(err.find("metrics.listen"), std::string::npos) << err;
  Save(P("a.h5"));
  Pass(seconds(1));
  EXPECT_TRUE(Jobs().empty()) << "the refused config's settle was applied";
}

TEST_F(PipelineReload, PendingFilesSurviveAWatchRestart) {
  StartOne("settle: 5s");
  Save(P("a.h5"));
  ASSERT_TRUE(Reload(Watch("run", kRoot, "settle: 5s, recursive: true")));
  Pass(seconds(6));
  EXPECT_EQ(Jobs().size(), 1u);
}

}  // namespace
}  // namespace ckptwatch::testing
