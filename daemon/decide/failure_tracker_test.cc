#include "decide/failure_tracker.h"

#include <gtest/gtest.h>

namespace ckptwatch {
namespace {

class FailureTrackerTest : public ::testing::Test {
 protected:
  FailureTrackerTest() : paths_(100) { config_.path = "/w"; }
  void Failed(const std::string& path, std::int64_t mtime) {
    PathRecord::Remembered r;
    r.stat.mtime_ns = mtime;
    r.verdict = "truncated";
    r.cause = "writer_died";
    paths_.Remember(path, r);
    tracker_.MarkChanged();
  }
  bool GoodSave(const std::string& path, std::int64_t mtime) {
    FileStat stat;
    stat.mtime_ns = mtime;
    PathRecord::Remembered r;
    r.stat = stat;
    r.verdict = "ok";
    paths_.Remember(path, r);
    return tracker_.Resolve(paths_, config_, run_of_, path, stat, std::nullopt, 1000);
  }
  std::string Cause(const std::string& path) { return paths_.Find(path)->remembered->cause; }

  WatchConfig config_;
  PathTable paths_;
  FailureTracker tracker_;
  // Runs are the first directory below the root.
  FailureTracker::RunOf run_of_ = [](const std::string& path) {
    const std::string relative = path.substr(3);
    const std::size_t slash = relative.find('/');
    return slash == std::string::npos ? std::string() : relative.substr(0, slash);
  };
};

TEST_F(FailureTrackerTest, ANewerGoodSaveOfTheSameRunEndsAFailureAndOthersDoNot) {
  config_.run_depth = 1;
  Failed("/w/a/1.h5", 10);
  EXPECT_FALSE(GoodSave("/w/b/1.h5", 20)) << "another run";
  EXPECT_FALSE(GoodSave("/w/a/0.h5", 5)) << "older than the failure";
  EXPECT_EQ(Cause("/w/a/1.h5"), "writer_died");
  EXPECT_TRUE(GoodSave("/w/a/2.h5", 30));
  EXPECT_EQ(Cause("/w/a/1.h5"), "");
  ASSERT_EQ(tracker_.resolved().size(), 1u);
  EXPECT_EQ(tracker_.resolved()[0].resolved_by, "/w/a/2.h5");
  EXPECT_EQ(tracker_.resolved()[0].resolved_unix, 1000);
}

TEST_F(FailureTrackerTest, AGoodMemberOfTheSameSaveDoesNotEndItsBrokenSibling) {
  config_.run_depth = 1;
  Failed("/w/a/step_9/shard-0.safetensors", 10);
  EXPECT_FALSE(GoodSave("/w/a/step_9/shard-1.safetensors", 20));
  EXPECT_TRUE(GoodSave("/w/a/step_10/shard-0.safetensors", 30));
}

TEST_F(FailureTrackerTest, PublishGivesEveryCountOnceThenOnlyChanges) {
  Failed("/w/1.h5", 10);
  Failed("/w/2.h5", 11);
  auto first = tracker_.Publish(paths_, "run", run_of_);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].count, 2u);
  EXPECT_TRUE(tracker_.Publish(paths_, "run", run_of_).empty()) << "nothing changed";
  EXPECT_TRUE(GoodSave("/w/3.h5", 20));
  auto after = tracker_.Publish(paths_, "run", run_of_);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].cause, "writer_died");
  EXPECT_EQ(after[0].count, 0u) << "0 says none; the series stays";
}

}  // namespace
}  // namespace ckptwatch
