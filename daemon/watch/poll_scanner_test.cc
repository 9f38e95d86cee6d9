#include "watch/poll_scanner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "base/temp_dir.h"
#include "watch/scan_directory.h"
#include "watch/snapshot.h"

namespace ckptwatch {
namespace {

using std::chrono::seconds;
using Strings = std::vector<std::string>;
using testing::TempDir;
using testing::WriteFile;

Snapshot Make(std::initializer_list<std::pair<const std::string, FileStat>> files) {
  Snapshot snapshot;
  snapshot.files = files;
  return snapshot;
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

}  // namespace
}  // namespace ckptwatch
