#include "decide/run_tracker.h"

#include <gtest/gtest.h>

namespace ckptwatch {
namespace {

using Names = std::vector<std::string>;

class RunTrackerTest : public ::testing::Test {
 protected:
  RunTrackerTest() { Configure(1, 2); }
  void Configure(int depth, int max_runs) {
    WatchConfig config;
    config.name = "w";
    config.path = "/w";
    config.run_depth = depth;
    config.max_runs = max_runs;
    runs_.Apply(config);
  }
  // "+run" for a RunAdded, "-run" for a RunRemoved, "-run>by" for one expired for `by`.
  static std::vector<std::string> Said(const RunTracker::Events& events) {
    std::vector<std::string> said;
    for (const PipelineEvent& event : events) {
      if (const auto* added = std::get_if<RunAdded>(&event)) {
        EXPECT_EQ(added->watch, "w");
        said.push_back("+" + added->run);
      } else if (const auto* removed = std::get_if<RunRemoved>(&event)) {
        EXPECT_EQ(removed->watch, "w");
        said.push_back("-" + removed->run +
                       (removed->expired_for ? ">" + *removed->expired_for : ""));
      } else {
        ADD_FAILURE() << "not a run event";
      }
    }
    return said;
  }
  static Snapshot Files(std::initializer_list<std::pair<const char*, std::int64_t>> files) {
    Snapshot snapshot;
    for (const auto& [path, mtime] : files) snapshot.files[path].mtime_ns = mtime;
    return snapshot;
  }

  RunTracker runs_;
};

TEST_F(RunTrackerTest, ARunIsTheComponentAtRunDepthAndAFileNeedsADirectoryThere) {
  EXPECT_EQ(runs_.Of("/w/a/ckpt.h5"), "a");
  EXPECT_EQ(runs_.Of("/w/a/b/ckpt.h5"), "a");
  EXPECT_EQ(runs_.Of("/w/ckpt.h5"), "") << "a file at the root is in no run";
  EXPECT_EQ(runs_.Of("/w/a", /*directory=*/true), "a");
  EXPECT_EQ(runs_.Of("/elsewhere/a/ckpt.h5"), "");
  Configure(2, 2);
  EXPECT_EQ(runs_.Of("/w/a/b/ckpt.h5"), "b");
  EXPECT_EQ(runs_.Of("/w/a/ckpt.h5"), "");
  Configure(0, 2);
  EXPECT_EQ(runs_.Of("/w/a/ckpt.h5"), "") << "run_depth 0: no runs";
}

TEST_F(RunTrackerTest, AFirstSeenRunIsAddedOnceAndNoRunIsNothing) {
  EXPECT_EQ(Said(runs_.See("a")), Names{"+a"});
  EXPECT_EQ(Said(runs_.See("a")), Names{});
  EXPECT_EQ(Said(runs_.See("")), Names{});
  EXPECT_TRUE(runs_.Has("a"));
}

TEST_F(RunTrackerTest, PastMaxRunsTheLeastRecentlyActiveExpiresWithWhatItKept) {
  runs_.See("a");
  runs_.See("b");
  runs_.SetLastGood("a", {"/w/a/1.h5", 10, 100});
  runs_.SetComplete("a", {"a", "/w/a/step_1", "dcp", 1, 10});
  runs_.See("a");  // b is now the least recently active
  EXPECT_EQ(Said(runs_.See("c")), (Names{"-b>c", "+c"}));
  EXPECT_EQ(Said(runs_.See("d")), (Names{"-a>d", "+d"}));
  EXPECT_FALSE(runs_.Has("a"));
  EXPECT_TRUE(runs_.last_good().empty());
  EXPECT_TRUE(runs_.complete().empty());
}

TEST_F(RunTrackerTest, ARunsDirectoryGoneEndsItAndAFileGoneDoesNot) {
  runs_.See("a");
  runs_.SetLastGood("a", {"/w/a/1.h5", 10, 100});
  EXPECT_EQ(Said(runs_.Gone("/w/a/1.h5")), Names{});
  EXPECT_EQ(Said(runs_.Gone("/w/a")), Names{"-a"});
  EXPECT_TRUE(runs_.last_good().empty());
  EXPECT_EQ(Said(runs_.Gone("/w/a")), Names{}) << "over already";
}

TEST_F(RunTrackerTest, ClearEndsEveryRunAndWhatTheyKept) {
  runs_.See("a");
  runs_.See("b");
  runs_.SetComplete("", {"", "/w/step_1", "dcp", 1, 10});
  EXPECT_EQ(Said(runs_.Clear()), (Names{"-a", "-b"}));
  EXPECT_TRUE(runs_.complete().empty());
  EXPECT_EQ(Said(runs_.See("a")), Names{"+a"});
}

TEST_F(RunTrackerTest, SeedAddsTheMostRecentlyWrittenRunsOldestFirst) {
  const Snapshot snapshot = Files({{"/w/a/1.h5", 30},
                                   {"/w/b/1.h5", 10},
                                   {"/w/b/2.h5", 40},
                                   {"/w/c/1.h5", 20},
                                   {"/w/top.h5", 99}});
  EXPECT_EQ(Said(runs_.Seed(snapshot)), (Names{"+a", "+b"}));
  // b was written last, so a expires first.
  EXPECT_EQ(Said(runs_.See("c")), (Names{"-a>c", "+c"}));
  Configure(0, 2);
  EXPECT_EQ(Said(runs_.Seed(snapshot)), Names{});
}

TEST_F(RunTrackerTest, NoRunKeepsNoLastGoodButTheWatchKeepsItsCompleteSet) {
  runs_.SetLastGood("", {"/w/top.h5", 10, 100});
  runs_.SetComplete("", {"", "/w/step_1", "dcp", 1, 10});
  EXPECT_TRUE(runs_.last_good().empty());
  ASSERT_EQ(runs_.complete().size(), 1u);
  EXPECT_EQ(runs_.complete().at("").path, "/w/step_1");
}

}  // namespace
}  // namespace ckptwatch
