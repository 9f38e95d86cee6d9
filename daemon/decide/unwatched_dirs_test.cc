#include "decide/unwatched_dirs.h"

#include <gtest/gtest.h>

namespace ckptwatch {
namespace {

using std::chrono::seconds;
using Names = std::vector<std::string>;

class UnwatchedDirsTest : public ::testing::Test {
 protected:
  static Snapshot Files(std::initializer_list<std::pair<const char*, std::int64_t>> files) {
    Snapshot snapshot;
    for (const auto& [path, mtime] : files) snapshot.files[path].mtime_ns = mtime;
    return snapshot;
  }
  // The daemon has seen /w/a/old.h5 at mtime 1 and nothing else.
  static bool Seen(const std::string& path, const FileStat& stat) {
    return path == "/w/a/old.h5" && stat.mtime_ns == 1;
  }

  UnwatchedDirs dirs_;
  UnwatchedDirs::Clock::time_point t0_{seconds(1000)};
};

TEST_F(UnwatchedDirsTest, EachDirectoryIsPolledOncePerIntervalAndNotWhileItsPollRuns) {
  EXPECT_TRUE(dirs_.Due(t0_, seconds(10)).empty()) << "nothing unwatched";
  EXPECT_EQ(dirs_.Add("a", seconds(1)), 1u);
  EXPECT_EQ(dirs_.Add("b", seconds(1)), 2u);
  EXPECT_EQ(dirs_.Add("a", seconds(1)), 2u) << "added once";
  EXPECT_EQ(dirs_.Due(t0_, seconds(10)), (Names{"a", "b"}));
  dirs_.Started("a");
  EXPECT_TRUE(dirs_.Due(t0_ + seconds(9), seconds(10)).empty()) << "not due yet";
  EXPECT_EQ(dirs_.Due(t0_ + seconds(10), seconds(10)), Names{"b"}) << "a's poll is under way";
  EXPECT_TRUE(dirs_.Finished("a"));
  EXPECT_EQ(dirs_.Due(t0_ + seconds(20), seconds(10)), (Names{"a", "b"}));
}

TEST_F(UnwatchedDirsTest, TheFirstPollLooksAtWhatTheDaemonHasNotSeenAndLaterOnesAtWhatSettled) {
  dirs_.Add("a", seconds(1));
  dirs_.Started("a");
  ASSERT_TRUE(dirs_.Finished("a"));
  EXPECT_EQ(dirs_.Polled("a", Files({{"/w/a/old.h5", 1}, {"/w/a/new.h5", 5}}), t0_, Seen),
            Names{"/w/a/new.h5"});
  const Snapshot written = Files({{"/w/a/old.h5", 7}, {"/w/a/new.h5", 5}});
  EXPECT_TRUE(dirs_.Polled("a", written, t0_ + seconds(2), Seen).empty()) << "not settled yet";
  EXPECT_EQ(dirs_.Polled("a", written, t0_ + seconds(4), Seen), Names{"/w/a/old.h5"});
}

TEST_F(UnwatchedDirsTest, ADirectoryAddedAgainIsBaselinedAgain) {
  dirs_.Add("a", seconds(1));
  dirs_.Polled("a", Files({}), t0_, Seen);
  dirs_.Add("a", seconds(1));
  EXPECT_EQ(dirs_.Polled("a", Files({{"/w/a/new.h5", 5}}), t0_ + seconds(1), Seen),
            Names{"/w/a/new.h5"});
}

TEST_F(UnwatchedDirsTest, ADirectoryGoneTakesItsSubdirectoriesAndAPollOfItIsForNobody) {
  dirs_.Add("a", seconds(1));
  dirs_.Add("a/b", seconds(1));
  dirs_.Add("ab", seconds(1));
  dirs_.Started("a/b");
  dirs_.ForgetUnder("a");
  EXPECT_EQ(dirs_.size(), 1u) << "ab is not below a";
  EXPECT_FALSE(dirs_.Finished("a/b"));
  EXPECT_TRUE(dirs_.Polled("a/b", Files({{"/w/a/b/new.h5", 5}}), t0_, Seen).empty());
  dirs_.Remove("ab");
  EXPECT_TRUE(dirs_.empty());
}

TEST_F(UnwatchedDirsTest, APollUnderWayWhenTheWatchStoppedStillHoldsItsDirectoryBack) {
  dirs_.Add("a", seconds(1));
  dirs_.Started("a");
  dirs_.Clear();
  EXPECT_TRUE(dirs_.empty());
  dirs_.Add("a", seconds(1));
  EXPECT_TRUE(dirs_.Due(t0_, seconds(10)).empty()) << "the old poll has not come back";
  EXPECT_TRUE(dirs_.Finished("a"));
  EXPECT_EQ(dirs_.Due(t0_ + seconds(10), seconds(10)), Names{"a"});
}

}  // namespace
}  // namespace ckptwatch
