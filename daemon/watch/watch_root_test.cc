#include "watch/watch_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "watch/watch_test_util.h"

namespace ckptwatch {
namespace {

using testing::TempDir;

ino_t InodeOf(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

ino_t InodeOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(WatchRoot, OpensADirectoryAndKeepsItAcrossRenames) {
  TempDir dir;
  std::filesystem::create_directories(dir / "runs/a");
  UniqueFd fd;
  std::string err;
  int error = 0;
  ASSERT_TRUE(OpenWatchRoot(dir / "runs/a", &fd, &err, &error)) << err;
  const ino_t inode = InodeOf(dir / "runs/a");
  std::filesystem::rename(dir / "runs/a", dir / "runs/b");
  EXPECT_EQ(InodeOf(fd.get()), inode);
}

TEST(WatchRoot, MissingAndFileAreReportedWithTheirErrno) {
  TempDir dir;
  testing::WriteFile(dir / "file");
  UniqueFd fd;
  std::string err;
  int error = 0;
  EXPECT_FALSE(OpenWatchRoot(dir / "none/deeper", &fd, &err, &error));
  EXPECT_EQ(error, ENOENT);
  EXPECT_FALSE(OpenWatchRoot(dir / "file", &fd, &err, &error));
  EXPECT_EQ(error, ENOTDIR);
  EXPECT_FALSE(OpenWatchRoot("relative/path", &fd, &err, &error));
}

// The administrator's symlink (/data -> /mnt/nvme0/data) is root's; a user's is not.
TEST(WatchRoot, FollowsOnlySymlinksOwnedByRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to own and chown symlinks";
  TempDir dir;
  std::filesystem::create_directories(dir / "real");
  std::filesystem::create_directories(dir / "private");
  ASSERT_EQ(symlink((dir / "real").c_str(), (dir / "admin_link").c_str()), 0);
  ASSERT_EQ(symlink((dir / "private").c_str(), (dir / "user_link").c_str()), 0);
  ASSERT_EQ(lchown((dir / "user_link").c_str(), 65534, 65534), 0);
  UniqueFd fd;
  std::string err;
  int error = 0;
  ASSERT_TRUE(OpenWatchRoot(dir / "admin_link", &fd, &err, &error)) << err;
  EXPECT_EQ(InodeOf(fd.get()), InodeOf(dir / "real"));
  EXPECT_TRUE(IsTrustedDirectory(dir / "admin_link"));

  EXPECT_FALSE(OpenWatchRoot(dir / "user_link", &fd, &err, &error));
  EXPECT_EQ(error, ELOOP);
  EXPECT_NE(err.find("owned by uid 65534"), std::string::npos) << err;
  EXPECT_FALSE(IsTrustedDirectory(dir / "user_link"));
  // Not through an intermediate component either.
  std::filesystem::create_directories(dir / "private/sub");
  EXPECT_FALSE(OpenWatchRoot(dir / "user_link/sub", &fd, &err, &error));
  EXPECT_EQ(error, ELOOP);
}

TEST(WatchRoot, RelativeAndDotDotTargetsResolveFromWhereTheLinkIs) {
  if (geteuid() != 0) GTEST_SKIP() << "symlinks made by a non-root user are not followed";
  TempDir dir;
  std::filesystem::create_directories(dir / "a/b");
  std::filesystem::create_directories(dir / "a/c");
  ASSERT_EQ(symlink("../c", (dir / "a/b/up").c_str()), 0);
  UniqueFd fd;
  std::string err;
  int error = 0;
  ASSERT_TRUE(OpenWatchRoot(dir / "a/b/up", &fd, &err, &error)) << err;
  EXPECT_EQ(InodeOf(fd.get()), InodeOf(dir / "a/c"));
}

}  // namespace
}  // namespace ckptwatch
