#include "watch/scan_directory.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "base/temp_dir.h"

namespace ckptwatch {
namespace {

using Strings = std::vector<std::string>;
using testing::TempDir;
using testing::WriteFile;

Strings Paths(const Snapshot& snapshot) {
  Strings paths;
  for (const auto& item : snapshot.files) paths.push_back(item.first);
  return paths;
}

TEST(ScanDirectory, RecordsSizeMtimeAndInode) {
  TempDir dir;
  WriteFile(dir / "a.h5", "12345");
  struct timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 123456789}};
  ASSERT_EQ(utimensat(AT_FDCWD, (dir / "a.h5").c_str(), times, 0), 0);
  struct stat st;
  ASSERT_EQ(stat((dir / "a.h5").c_str(), &st), 0);

  Snapshot snapshot;
  std::string err;
  ASSERT_TRUE(ScanDirectory(dir.path(), {}, &snapshot, &err)) << err;
  ASSERT_EQ(Paths(snapshot), Strings{dir / "a.h5"});
  const FileStat& file = snapshot.files.at(dir / "a.h5");
  EXPECT_EQ(file.size, 5u);
  EXPECT_EQ(file.mtime_ns, 1700000000123456789);
  EXPECT_EQ(file.ino, st.st_ino);
}

TEST(ScanDirectory, RecursesOnlyWhenAskedAndAppliesTheFilter) {
  TempDir dir;
  std::filesystem::create_directories(dir / "run1/epoch2");
  WriteFile(dir / "top.h5", "x");
  WriteFile(dir / "notes.txt", "x");
  WriteFile(dir / "run1/epoch2/deep.h5", "x");

  ScanOptions options;
  options.filter = [](const std::string& path) { return path.ends_with(".h5"); };
  Snapshot recursive;
  std::string err;
  ASSERT_TRUE(ScanDirectory(dir.path(), options, &recursive, &err)) << err;
  EXPECT_EQ(Paths(recursive), (Strings{dir / "run1/epoch2/deep.h5", dir / "top.h5"}));

  options.recursive = false;
  Snapshot flat;
  ASSERT_TRUE(ScanDirectory(dir.path(), options, &flat, &err)) << err;
  EXPECT_EQ(Paths(flat), Strings{dir / "top.h5"});
}

TEST(ScanDirectory, NeverFollowsSymlinksBelowTheRoot) {
  TempDir dir, outside;
  std::filesystem::create_directory(dir / "root");
  WriteFile(outside / "elsewhere.h5", "x");
  std::filesystem::create_directory_symlink(outside.path(), dir / "root/link_dir");
  std::filesystem::create_symlink(outside / "elsewhere.h5", dir / "root/link.h5");
  WriteFile(dir / "root/real.h5", "x");
  // The root itself may be a symlink: the user named it.
  std::filesystem::create_directory_symlink(dir / "root", dir / "root_link");

  Snapshot snapshot;
  std::string err;
  ASSERT_TRUE(ScanDirectory(dir / "root_link", {}, &snapshot, &err)) << err;
  EXPECT_EQ(Paths(snapshot), Strings{dir / "root_link/real.h5"});
}

TEST(ScanDirectory, MissingRootIsAnErrorNamingThePath) {
  TempDir dir;
  Snapshot snapshot;
  std::string err;
  EXPECT_FALSE(ScanDirectory(dir / "nope", {}, &snapshot, &err));
  EXPECT_NE(err.find(dir / "nope"), std::string::npos) << err;
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
}

}  // namespace
}  // namespace ckptwatch
