#include "core/start_checks.h"

#include <gtest/gtest.h>

#include "base/temp_dir.h"

namespace ckptwatch {
namespace {

TEST(StartChecks, WarnsOnlyWhenHardLinksAreUnprotected) {
  testing::TempDir dir;
  testing::WriteFile(dir / "off", "0\n");
  testing::WriteFile(dir / "on", "1\n");
  const std::string warning = HardlinkProtectionWarning(dir / "off");
  EXPECT_NE(warning.find("fs.protected_hardlinks is 0"), std::string::npos) << warning;
  EXPECT_NE(warning.find("set fs.protected_hardlinks=1"), std::string::npos) << warning;
  EXPECT_EQ(HardlinkProtectionWarning(dir / "on"), "");
  EXPECT_EQ(HardlinkProtectionWarning(dir / "missing"), "");
}

}  // namespace
}  // namespace ckptwatch
