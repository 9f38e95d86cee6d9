#include "watch/network_filesystem.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "base/temp_dir.h"

namespace ckptwatch {
namespace {

using testing::TempDir;

TEST(NetworkFilesystem, KnowsTheSharedFilesystemsByMagic) {
  struct Case {
    std::int64_t magic;
    const char* name;
    bool network;
  };
  const Case cases[] = {
      {0x6969, "nfs", true},
      {0x0BD00BD0, "lustre", true},
      {0x47504653, "gpfs", true},
      {0x00C36400, "ceph", true},
      {0xFF534D42, "cifs", true},
      {static_cast<std::int32_t>(0xFF534D42), "cifs", true},  // as a signed f_type
      {0xFE534D42, "smb2", true},
      {0x517B, "smb", true},
      {0x65735546, "fuse", true},
      {0x01021997, "9p", true},
      {0xEF53, "ext4", false},
      {0x58465342, "xfs", false},
      {0x01021994, "tmpfs", false},
      {0x794C7630, "overlayfs", false},
      {0x12345678, "0x12345678", false},
  };
  for (const Case& c : cases) {
    std::string name;
    EXPECT_EQ(IsNetworkFilesystemType(c.magic, &name), c.network) << c.name;
    EXPECT_EQ(name, c.name);
  }
}

TEST(NetworkFilesystem, LocalDirectoriesAreNotNetwork) {
  TempDir dir;
  std::string name;
  EXPECT_FALSE(IsNetworkFilesystem(dir.path(), &name));
  EXPECT_FALSE(name.empty());
  EXPECT_FALSE(IsNetworkFilesystem("/dev/shm", &name));
  EXPECT_EQ(name, "tmpfs");
  EXPECT_FALSE(IsNetworkFilesystem(dir / "missing", &name));
  EXPECT_NE(name.find("No such file"), std::string::npos) << name;
}

}  // namespace
}  // namespace ckptwatch
