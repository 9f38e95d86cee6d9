#include "cli/verify_command.h"

#include <gtest/gtest.h>

namespace ckptwatch {
namespace {

TEST(VerifySummary, OkFirstThenTheRestMostFrequentFirst) {
  EXPECT_EQ(FormatVerifySummary({{"truncated", 1}, {"ok", 2}}), "3 files: 2 ok, 1 truncated");
  EXPECT_EQ(FormatVerifySummary({{"corrupt", 1}, {"empty", 3}, {"truncated", 1}}),
            "5 files: 3 empty, 1 corrupt, 1 truncated");
  EXPECT_EQ(FormatVerifySummary({{"ok", 1}}), "1 file: 1 ok");
}

}  // namespace
}  // namespace ckptwatch
