#include "settle/settle_queue.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace ckptwatch {
namespace {

using std::chrono::seconds;
using Strings = std::vector<std::string>;

// A fake clock: a time point the test advances by hand.
struct Settle : ::testing::Test {
  SettleQueue::Clock::time_point now{seconds(1000)};
  SettleQueue queue{seconds(5), 100};
};

TEST_F(Settle, VerifiesOnceAfterQuietPeriod) {
  ASSERT_TRUE(queue.Touch("/c/a.h5", now));
  EXPECT_TRUE(queue.Ready(now).empty());
  EXPECT_TRUE(queue.Ready(now + seconds(4)).empty());
  EXPECT_EQ(queue.Ready(now + seconds(5)), Strings{"/c/a.h5"});
  EXPECT_TRUE(queue.Ready(now + seconds(60)).empty());
  EXPECT_EQ(queue.pending_count(), 0u);
}

TEST_F(Settle, RewriteWithinWindowIsReturnedOnceForFinalContent) {
  queue.Touch("/c/a.h5", now);
  queue.Touch("/c/a.h5", now + seconds(3));
  queue.Touch("/c/a.h5", now + seconds(6));
  EXPECT_EQ(queue.pending_count(), 1u);
  // Quiet for 5 s counts from the last write, not the first.
  EXPECT_TRUE(queue.Ready(now + seconds(10)).empty());
  EXPECT_EQ(queue.Ready(now + seconds(11)), Strings{"/c/a.h5"});
  EXPECT_TRUE(queue.Ready(now + seconds(20)).empty());
}

TEST_F(Settle, NewSettleAppliesToLaterWritesAndPendingPathsKeepTheirs) {
  queue.Touch("/c/old.h5", now);
  queue.set_settle(seconds(1));
  queue.Touch("/c/new.h5", now + seconds(1));
  EXPECT_EQ(queue.NextDeadline(), now + seconds(2));
  EXPECT_EQ(queue.Ready(now + seconds(2)), Strings{"/c/new.h5"});
  EXPECT_TRUE(queue.Ready(now + seconds(4)).empty());
  EXPECT_EQ(queue.Ready(now + seconds(5)), Strings{"/c/old.h5"});
  // A longer settle: a rewrite of a pending path waits the new period from its last write.
  queue.Touch("/c/old.h5", now + seconds(10));
  queue.set_settle(seconds(30));
  queue.Touch("/c/old.h5", now + seconds(11));
  EXPECT_TRUE(queue.Ready(now + seconds(40)).empty());
  EXPECT_EQ(queue.Ready(now + seconds(41)), Strings{"/c/old.h5"});
}

TEST_F(Settle, NextDeadlineIsTheEarliestPendingPath) {
  EXPECT_FALSE(queue.NextDeadline().has_value());
  queue.Touch("/c/b.h5", now + seconds(2));
  queue.Touch("/c/a.h5", now);
  EXPECT_EQ(queue.NextDeadline(), now + seconds(5));
  queue.Touch("/c/a.h5", now + seconds(4));  // now due after b
  EXPECT_EQ(queue.NextDeadline(), now + seconds(7));
  EXPECT_EQ(queue.Ready(*queue.NextDeadline()), Strings{"/c/b.h5"});
  EXPECT_EQ(queue.NextDeadline(), now + seconds(9));
  queue.Ready(now + seconds(9));
  EXPECT_FALSE(queue.NextDeadline().has_value());
}

TEST_F(Settle, ReadyReturnsEarliestDeadlineFirst) {
  queue.Touch("/c/z.h5", now);
  queue.Touch("/c/a.h5", now + seconds(1));
  queue.Touch("/c/m.h5", now + seconds(2));
  EXPECT_EQ(queue.Ready(now + seconds(30)), (Strings{"/c/z.h5", "/c/a.h5", "/c/m.h5"}));
}

TEST_F(Settle, WriteDuringVerificationSupersedesTheVerdict) {
  queue.Touch("/c/a.h5", now);
  ASSERT_EQ(queue.Ready(now + seconds(5)), Strings{"/c/a.h5"});
  queue.MarkInFlight("/c/a.h5");
  EXPECT_EQ(queue.in_flight_count(), 1u);

  queue.Touch("/c/a.h5", now + seconds(6));
  // Not handed out twice while the first verification still runs.
  EXPECT_TRUE(queue.Ready(now + seconds(60)).empty());
  EXPECT_FALSE(queue.NextDeadline().has_value());
  EXPECT_EQ(queue.pending_count(), 1u);

  EXPECT_TRUE(queue.Finish("/c/a.h5"));
  EXPECT_EQ(queue.in_flight_count(), 0u);
  EXPECT_EQ(queue.NextDeadline(), now + seconds(11));
  EXPECT_EQ(queue.Ready(now + seconds(11)), Strings{"/c/a.h5"});
}

TEST_F(Settle, FinishWithoutRewriteIsNotSupersededAndForgetsThePath) {
  queue.Touch("/c/a.h5", now);
  queue.Ready(now + seconds(5));
  queue.MarkInFlight("/c/a.h5");
  EXPECT_FALSE(queue.Finish("/c/a.h5"));
  EXPECT_EQ(queue.pending_count(), 0u);
  EXPECT_EQ(queue.in_flight_count(), 0u);
  EXPECT_FALSE(queue.Finish("/c/a.h5"));  // unknown path: nothing to discard
}

TEST_F(Settle, WriteBetweenReadyAndMarkInFlightSupersedes) {
  queue.Touch("/c/a.h5", now);
  queue.Ready(now + seconds(5));
  queue.Touch("/c/a.h5", now + seconds(6));
  queue.MarkInFlight("/c/a.h5");
  EXPECT_TRUE(queue.Ready(now + seconds(60)).empty());
  EXPECT_TRUE(queue.Finish("/c/a.h5"));
  EXPECT_EQ(queue.Ready(now + seconds(11)), Strings{"/c/a.h5"});
}

TEST_F(Settle, FullQueueDropsNewPathsAndReportsOverflowOnce) {
  SettleQueue small(seconds(5), 2);
  EXPECT_TRUE(small.Touch("/c/a.h5", now));
  EXPECT_TRUE(small.Touch("/c/b.h5", now));
  EXPECT_FALSE(small.Touch("/c/c.h5", now));
  EXPECT_FALSE(small.Touch("/c/d.h5", now));
  // Known paths are de-duplicated, so touching them again still works.
  EXPECT_TRUE(small.Touch("/c/a.h5", now + seconds(1)));
  EXPECT_EQ(small.dropped_total(), 2u);
  EXPECT_TRUE(small.TakeOverflow());
  EXPECT_FALSE(small.TakeOverflow());
  EXPECT_EQ(small.Ready(now + seconds(10)), (Strings{"/c/b.h5", "/c/a.h5"}));
  EXPECT_TRUE(small.Touch("/c/c.h5", now + seconds(10)));  // room again
}

TEST_F(Settle, ManyWritesToOnePathAreOneEntry) {
  for (int i = 0; i < 1000; ++i) queue.Touch("/c/a.h5", now + std::chrono::milliseconds(i));
  EXPECT_EQ(queue.pending_count(), 1u);
  EXPECT_EQ(queue.Ready(now + seconds(30)), Strings{"/c/a.h5"});
}

TEST_F(Settle, ZeroSettleIsReadyAtOnce) {
  SettleQueue immediate(seconds(0), 10);
  immediate.Touch("/c/a.h5", now);
  EXPECT_EQ(immediate.NextDeadline(), now);
  EXPECT_EQ(immediate.Ready(now), Strings{"/c/a.h5"});
}

}  // namespace
TEST(SettleQueue, DropPendingUnderForgetsARenamedDirectoryButNotItsNeighbours) {
  SettleQueue q(std::chrono::seconds(1), 100);
  const auto t0 = SettleQueue::Clock::time_point{};
  q.Touch("/r/stage/a.h5", t0);
  q.Touch("/r/stage/b.h5", t0);
  q.Touch("/r/stage2/c.h5", t0);  // a neighbour whose name starts the same
  q.Touch("/r/d.h5", t0);
  auto ready = q.Ready(t0 + std::chrono::seconds(1));
  ASSERT_EQ(ready.size(), 4u);
  q.MarkInFlight("/r/stage/a.h5");
  q.Touch("/r/stage/a.h5", t0 + std::chrono::seconds(2));  // written again while in flight
  q.Touch("/r/stage/b.h5", t0 + std::chrono::seconds(2));
  q.Touch("/r/stage2/c.h5", t0 + std::chrono::seconds(2));
  q.DropPendingUnder("/r/stage");
  EXPECT_FALSE(q.IsPending("/r/stage/a.h5"));
  EXPECT_FALSE(q.IsPending("/r/stage/b.h5"));
  EXPECT_TRUE(q.IsPending("/r/stage2/c.h5"));
  EXPECT_FALSE(q.Finish("/r/stage/a.h5")) << "nothing stale to verify again under the old name";
  EXPECT_EQ(q.Ready(t0 + std::chrono::seconds(10)), std::vector<std::string>{"/r/stage2/c.h5"});
  EXPECT_EQ(q.pending_count(), 0u);
  EXPECT_EQ(q.in_flight_count(), 0u);
}

}  // namespace ckptwatch
