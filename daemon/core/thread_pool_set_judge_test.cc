// The SetJudge of a running daemon on a real libuv loop: a DCP directory without .metadata
// judged on the thread pool beneath the watch root, each result delivered on the loop, one at a
// time, in order; a watch without a root gets an empty result; Stop() drops what has not
// started.
#include "core/thread_pool_set_judge.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/real_env.h"

namespace ckptwatch {
namespace {

namespace fs = std::filesystem;

class ThreadPoolSetJudgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ckptwatch-tpjudge-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ASSERT_EQ(uv_loop_init(&loop_), 0);
  }
  void TearDown() override {
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    fs::remove_all(root_);
  }
  void Write(const std::string& rel) {
    fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
    std::ofstream(root_ + "/" + rel) << "x";
  }
  SetJudgeRequest Request(std::uint64_t id, const std::string& watch, const std::string& rel) {
    return SetJudgeRequest{id, watch, root_, rel, Level::kStructure, {}};
  }
  std::string root_;
  uv_loop_t loop_{};
  RealEnv env_;
};

TEST_F(ThreadPoolSetJudgeTest, JudgesBeneathTheRootOffTheLoopAndDeliversInOrderOnTheLoop) {
  Write("s1/__0_0.distcp");
  Write("s2/__0_0.distcp");
  std::string err;
  int error = 0;
  ASSERT_TRUE(env_.OpenRoot("w", root_, &err, &error)) << err;
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::vector<SetJudgeResult> results;
  ThreadPoolSetJudge judge(&loop_, env_, [&](const SetJudgeResult& r) {
    EXPECT_EQ(std::this_thread::get_id(), loop_thread) << "delivered on the loop";
    EXPECT_FALSE(judge.busy()) << "the next starts after this one is delivered";
    results.push_back(r);
  });
  judge.Judge(Request(1, "w", "s1"));
  judge.Judge(Request(2, "w", "s2"));
  judge.Judge(Request(3, "nowatch", "s1"));
  EXPECT_TRUE(judge.busy());
  uv_run(&loop_, UV_RUN_DEFAULT);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].request.id, 1u);
  EXPECT_EQ(results[1].request.id, 2u);
  ASSERT_EQ(results[0].events.size(), 1u);
  EXPECT_EQ(results[0].events[0].layout, "dcp");
  EXPECT_EQ(results[0].events[0].verdict, "incomplete");
  EXPECT_EQ(results[0].events[0].path, root_ + "/s1");
  EXPECT_TRUE(results[2].events.empty()) << "no root: nothing judged, the judgement still ends";
}

TEST_F(ThreadPoolSetJudgeTest, StopDropsWhatHasNotStarted) {
  Write("s1/__0_0.distcp");
  std::string err;
  int error = 0;
  ASSERT_TRUE(env_.OpenRoot("w", root_, &err, &error)) << err;
  int delivered = 0;
  ThreadPoolSetJudge judge(&loop_, env_, [&](const SetJudgeResult&) { ++delivered; });
  judge.Judge(Request(1, "w", "s1"));
  judge.Judge(Request(2, "w", "s1"));
  judge.Stop();
  judge.Judge(Request(3, "w", "s1"));
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(delivered, 0) << "a stopped daemon's pipeline waits for nothing";
}

}  // namespace
}  // namespace ckptwatch
