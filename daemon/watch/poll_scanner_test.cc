#include "watch/poll_scanner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "watch/watch_test_util.h"

namespace ckptwatch {
namespace {

using std::chrono::seconds;
using Strings = std::vector<std::string>;
using testing::TempDir;
using testing::WriteFile;

Strings Paths(const Snapshot& snapshot) {
  Strings paths;
  for (const auto& item : snapshot.files) paths.push_back(item.first);
  return paths;
}

Snapshot Make(std::initializer_list<std::pair<const std::string, FileStat>> files) {
  Snapshot snapshot;
  snapshot.files = files;
  return snapshot;
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

TEST(DiffSnapshots, ReportsNewAndChangedFilesOnly) {
  Snapshot before = Make({{"/c/same", {10, 1, 1}},
                          {"/c/grew", {10, 1, 2}},
                          {"/c/touched", {10, 1, 3}},
                          {"/c/replaced", {10, 1, 4}},
                          {"/c/deleted", {10, 1, 5}}});
  Snapshot after = Make({{"/c/same", {10, 1, 1}},
                         {"/c/grew", {20, 1, 2}},
                         {"/c/touched", {10, 2, 3}},
                         {"/c/replaced", {10, 1, 9}},
                         {"/c/new", {1, 1, 6}}});
  EXPECT_EQ(DiffSnapshots(before, after),
            (Strings{"/c/grew", "/c/new", "/c/replaced", "/c/touched"}));
}

struct Poll : ::testing::Test {
  PollScanner::Clock::time_point t0{seconds(500)};
  PollScanner scanner{seconds(10)};
};

TEST_F(Poll, ReportsAFileOnceStableForSettle) {
  Snapshot snapshot = Make({{"/c/a.h5", {100, 7, 1}}});
  EXPECT_TRUE(scanner.Update(snapshot, t0).empty());
  EXPECT_TRUE(scanner.Update(snapshot, t0 + seconds(5)).empty());
  EXPECT_EQ(scanner.unsettled_count(), 1u);
  EXPECT_EQ(scanner.Update(snapshot, t0 + seconds(10)), Strings{"/c/a.h5"});
  EXPECT_TRUE(scanner.Update(snapshot, t0 + seconds(15)).empty());
  EXPECT_EQ(scanner.unsettled_count(), 0u);
}

TEST_F(Poll, NewSettleAppliesToVersionsSeenFromThenOn) {
  scanner.Update(Make({{"/c/old.h5", {100, 7, 1}}}), t0);
  scanner.set_settle(seconds(2));
  Snapshot both = Make({{"/c/old.h5", {100, 7, 1}}, {"/c/new.h5", {5, 8, 2}}});
  EXPECT_TRUE(scanner.Update(both, t0 + seconds(1)).empty());
  EXPECT_EQ(scanner.Update(both, t0 + seconds(3)), Strings{"/c/new.h5"});
  EXPECT_TRUE(scanner.Update(both, t0 + seconds(9)).empty());
  EXPECT_EQ(scanner.Update(both, t0 + seconds(10)), Strings{"/c/old.h5"});
  // A rewrite is a new version: it waits the new settle.
  Snapshot rewritten = Make({{"/c/old.h5", {200, 9, 1}}, {"/c/new.h5", {5, 8, 2}}});
  EXPECT_TRUE(scanner.Update(rewritten, t0 + seconds(20)).empty());
  EXPECT_EQ(scanner.Update(rewritten, t0 + seconds(22)), Strings{"/c/old.h5"});
}

TEST_F(Poll, GrowingFileIsNotReportedUntilItStopsChanging) {
  for (int i = 0; i < 5; ++i) {
    Snapshot growing = Make({{"/c/a.h5", {100u * (i + 1), i, 1}}});
    EXPECT_TRUE(scanner.Update(growing, t0 + seconds(10 * i)).empty()) << i;
  }
  Snapshot done = Make({{"/c/a.h5", {500, 4, 1}}});
  EXPECT_TRUE(scanner.Update(done, t0 + seconds(45)).empty());
  EXPECT_EQ(scanner.Update(done, t0 + seconds(50)), Strings{"/c/a.h5"});
}

TEST_F(Poll, RewriteOrAtomicReplaceAfterReportIsReportedAgain) {
  Snapshot v1 = Make({{"/c/a.h5", {100, 7, 1}}});
  scanner.Update(v1, t0);
  ASSERT_EQ(scanner.Update(v1, t0 + seconds(10)), Strings{"/c/a.h5"});
  // Same size and mtime, new inode: renamed into place over the old one.
  Snapshot v2 = Make({{"/c/a.h5", {100, 7, 2}}});
  EXPECT_TRUE(scanner.Update(v2, t0 + seconds(20)).empty());
  EXPECT_EQ(scanner.Update(v2, t0 + seconds(30)), Strings{"/c/a.h5"});
}

TEST_F(Poll, BaselineFilesAreNotReportedButLaterWritesAre) {
  Snapshot existing = Make({{"/c/old.h5", {100, 7, 1}}});
  scanner.Baseline(existing);
  EXPECT_TRUE(scanner.Update(existing, t0).empty());
  EXPECT_TRUE(scanner.Update(existing, t0 + seconds(60)).empty());
  Snapshot more = Make({{"/c/old.h5", {100, 7, 1}}, {"/c/new.h5", {5, 8, 2}}});
  scanner.Update(more, t0 + seconds(70));
  EXPECT_EQ(scanner.Update(more, t0 + seconds(80)), Strings{"/c/new.h5"});
}

TEST_F(Poll, DeletedFileIsForgottenAndReportedAgainIfRecreated) {
  Snapshot one = Make({{"/c/a.h5", {100, 7, 1}}});
  scanner.Update(one, t0);
  scanner.Update(Snapshot{}, t0 + seconds(5));
  EXPECT_EQ(scanner.unsettled_count(), 0u);
  // Back with the same stat: a new file as far as the scanner knows.
  EXPECT_TRUE(scanner.Update(one, t0 + seconds(10)).empty());
  EXPECT_EQ(scanner.Update(one, t0 + seconds(20)), Strings{"/c/a.h5"});
}

TEST_F(Poll, RealFilesSettleWithAFakeClock) {
  TempDir dir;
  std::string err;
  auto scan = [&] {
    Snapshot snapshot;
    EXPECT_TRUE(ScanDirectory(dir.path(), {}, &snapshot, &err)) << err;
    return snapshot;
  };
  scanner.Baseline(scan());
  WriteFile(dir / "ckpt-1.h5", "partial");
  EXPECT_TRUE(scanner.Update(scan(), t0).empty());
  WriteFile(dir / "ckpt-1.h5", "partial plus the rest");
  EXPECT_TRUE(scanner.Update(scan(), t0 + seconds(10)).empty());  // changed: restarts
  EXPECT_EQ(scanner.Update(scan(), t0 + seconds(20)), Strings{dir / "ckpt-1.h5"});
}

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
