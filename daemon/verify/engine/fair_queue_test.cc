#include "verify/engine/fair_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ckptwatch {
namespace {

struct Job {
  std::string watch;
  std::string path;
  uid_t owner = 0;
  int version = 0;
};

std::vector<std::string> Drain(FairQueue<Job>& queue) {
  std::vector<std::string> order;
  while (auto job = queue.Pop()) order.push_back(job->path);
  return order;
}

TEST(FairQueue, OneWatchFloodDelaysAnotherByOneFile) {
  FairQueue<Job> queue;
  for (int i = 0; i < 1000; ++i) queue.Push({"A", "a/" + std::to_string(i), 1001});
  queue.Push({"B", "b/victim", 1002});
  ASSERT_EQ(queue.size(), 1001u);
  EXPECT_EQ(queue.Pop()->path, "a/0");
  EXPECT_EQ(queue.Pop()->path, "b/victim");
  EXPECT_EQ(queue.Pop()->path, "a/1");
  EXPECT_EQ(queue.size(), 998u);
}

TEST(FairQueue, OwnersTakeTurnsWithinAWatch) {
  FairQueue<Job> queue;
  queue.Push({"A", "x1", 1});
  queue.Push({"A", "x2", 1});
  queue.Push({"A", "x3", 1});
  queue.Push({"A", "y1", 2});
  queue.Push({"A", "y2", 2});
  EXPECT_EQ(Drain(queue), (std::vector<std::string>{"x1", "y1", "x2", "y2", "x3"}));
  EXPECT_TRUE(queue.empty());
}

TEST(FairQueue, WatchesTakeTurnsBeforeOwners) {
  FairQueue<Job> queue;
  // Watch A has two owners, watch B one: B gets every other turn.
  queue.Push({"A", "a-u1-1", 1});
  queue.Push({"A", "a-u1-2", 1});
  queue.Push({"A", "a-u2-1", 2});
  queue.Push({"B", "b-1", 3});
  queue.Push({"B", "b-2", 3});
  EXPECT_EQ(Drain(queue), (std::vector<std::string>{"a-u1-1", "b-1", "a-u2-1", "b-2", "a-u1-2"}));
}

TEST(FairQueue, SamePathReplacesInPlace) {
  FairQueue<Job> queue;
  queue.Push({"A", "p", 1, 1});
  queue.Push({"A", "q", 1, 1});
  queue.Push({"A", "p", 1, 2});
  EXPECT_EQ(queue.size(), 2u);
  auto first = queue.Pop();
  EXPECT_EQ(first->path, "p");
  EXPECT_EQ(first->version, 2);
}

TEST(FairQueue, SamePathNewOwnerMovesLane) {
  FairQueue<Job> queue;
  queue.Push({"A", "p", 1});
  queue.Push({"A", "q", 2});
  queue.Push({"A", "p", 3});  // chowned between two writes
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_EQ(Drain(queue), (std::vector<std::string>{"q", "p"}));
}

TEST(FairQueue, PushFrontGoesNextUnlessANewerJobWaits) {
  FairQueue<Job> queue;
  queue.Push({"A", "a1", 1});
  queue.Push({"B", "b1", 2});
  queue.PushFront({"B", "b0", 2});
  EXPECT_EQ(queue.Pop()->path, "b0");
  queue.PushFront({"A", "a1", 1, 7});  // a1 waits already: the waiting one stays
  auto a1 = queue.Pop();
  EXPECT_EQ(a1->path, "a1");
  EXPECT_EQ(a1->version, 0);
  EXPECT_EQ(Drain(queue), (std::vector<std::string>{"b1"}));
}

TEST(FairQueue, EraseIfForgetsPathsAndEmptyLanes) {
  FairQueue<Job> queue;
  queue.Push({"A", "a1", 1});
  queue.Push({"B", "b1", 1});
  queue.Push({"A", "a2", 2});
  queue.EraseIf([](const Job& job) { return job.watch == "A"; });
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_FALSE(queue.contains("a1"));
  queue.Push({"A", "a1", 1});  // a forgotten path can come back
  EXPECT_EQ(Drain(queue), (std::vector<std::string>{"b1", "a1"}));
}

}  // namespace
}  // namespace ckptwatch
