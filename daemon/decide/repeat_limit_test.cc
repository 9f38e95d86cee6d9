#include "decide/repeat_limit.h"

#include <gtest/gtest.h>

namespace ckptwatch {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

class LimitRepeatTest : public ::testing::Test {
 protected:
  // Counts `key` at t0 + `at` with log.repeat_every `every`; "" when the line is left out.
  std::string Line(const std::string& key, seconds at, minutes every = minutes(10)) {
    std::string note;
    const bool quiet = LimitRepeat(repeat_, key, t0_ + at, kUnix + at.count(), every, &note);
    return quiet ? "" : "said" + (note.empty() ? "" : " " + note);
  }

  // 2027-01-15 14:05:00 UTC.
  static constexpr double kUnix = 1800000000 - 1800000000 % 86400 + 14 * 3600 + 5 * 60;
  std::optional<PathRecord::Repeat> repeat_;
  PathRecord::Clock::time_point t0_{seconds(100000)};
};

TEST_F(LimitRepeatTest, TheSameFailureAgainIsOneLinePerIntervalWithItsCountAndStart) {
  EXPECT_EQ(Line("truncated/disk_full", seconds(0)), "said");
  EXPECT_EQ(Line("truncated/disk_full", seconds(60)), "");
  EXPECT_EQ(Line("truncated/disk_full", seconds(599)), "");
  EXPECT_EQ(Line("truncated/disk_full", seconds(600)), "said (again, ×4 since 14:05)");
  EXPECT_EQ(Line("truncated/disk_full", seconds(660)), "")
      << "the interval counts from the last line";
  ASSERT_TRUE(repeat_);
  EXPECT_EQ(repeat_->count, 5u);
  EXPECT_EQ(repeat_->first_unix, kUnix);
}

TEST_F(LimitRepeatTest, AnotherFailureStartsANewSeries) {
  Line("truncated/disk_full", seconds(0));
  Line("truncated/disk_full", seconds(60));
  EXPECT_EQ(Line("corrupt/writer_died", seconds(120)), "said");
  EXPECT_EQ(repeat_->count, 1u);
  EXPECT_EQ(repeat_->first_unix, kUnix + 120);
}

TEST_F(LimitRepeatTest, WithoutAnIntervalEveryRepeatIsSaidWithItsCount) {
  EXPECT_EQ(Line("truncated/disk_full", seconds(0), minutes(0)), "said");
  EXPECT_EQ(Line("truncated/disk_full", seconds(1), minutes(0)), "said (again, ×2 since 14:05)");
}

TEST_F(LimitRepeatTest, ARestoredFailureIsARepeatAtItsFirstLine) {
  // As pipeline_saved.cc restores it: known, never logged by this process.
  repeat_ = PathRecord::Repeat{"truncated/disk_full", kUnix - 3600, 1, {}};
  EXPECT_EQ(Line("truncated/disk_full", seconds(0)), "said (again, ×2 since 13:05)");
}

}  // namespace
}  // namespace ckptwatch
