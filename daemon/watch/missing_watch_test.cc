#include "watch/missing_watch.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "watch/inotify_watcher.h"
#include "watch/watch_test_util.h"

namespace ckptwatch {
namespace {

using testing::Has;
using testing::TempDir;
using testing::WaitForEvents;
using testing::WriteFile;
using Kind = WatchEvent::Kind;
using Step = MissingWatch::Step;
using Events = std::vector<WatchEvent>;

namespace fs = std::filesystem;

TEST(NearestExistingAncestor, IsThePathItselfWhenItExists) {
  TempDir dir;
  EXPECT_EQ(NearestExistingAncestor(dir.path()), dir.path());
  EXPECT_EQ(NearestExistingAncestor(dir.path() + "/"), dir.path());
}

TEST(NearestExistingAncestor, IsTheDeepestExistingDirectory) {
  TempDir dir;
  fs::create_directory(dir / "runs");
  EXPECT_EQ(NearestExistingAncestor(dir / "runs/exp1/ckpt"), dir / "runs");
  EXPECT_EQ(NearestExistingAncestor(dir / "runs/../runs/exp1"), dir / "runs");
  EXPECT_EQ(NearestExistingAncestor("/ckptwatch-no-such-dir/a/b"), "/");
}

TEST(NearestExistingAncestor, SkipsAFileInTheWay) {
  TempDir dir;
  WriteFile(dir / "runs");  // ENOTDIR below it
  EXPECT_EQ(NearestExistingAncestor(dir / "runs/exp1"), dir.path());
}

TEST(MissingWatch, WalksDownAsComponentsAppear) {
  TempDir dir;
  MissingWatch missing(dir / "runs/exp1/ckpt");
  EXPECT_EQ(missing.root(), dir / "runs/exp1/ckpt");
  EXPECT_EQ(missing.ancestor(), dir.path());

  fs::create_directory(dir / "other");
  EXPECT_EQ(missing.OnEntry(dir / "other"), Step::kWait);
  fs::create_directory(dir / "runs");
  EXPECT_EQ(missing.OnEntry(dir / "runs"), Step::kMoveWatch);
  EXPECT_EQ(missing.ancestor(), dir / "runs");
  EXPECT_EQ(missing.Refresh(), Step::kWait);

  fs::create_directory(dir / "runs/exp1");
  EXPECT_EQ(missing.OnEntry(dir / "runs/exp1"), Step::kMoveWatch);
  fs::create_directory(dir / "runs/exp1/ckpt");
  EXPECT_EQ(missing.OnEntry(dir / "runs/exp1/ckpt"), Step::kExists);
}

TEST(MissingWatch, SeveralLevelsAtOnceGoStraightToTheDeepest) {
  TempDir dir;
  MissingWatch missing(dir / "a/b/c/d");
  fs::create_directories(dir / "a/b/c");
  // The event names only the first new level; the walk looks from the root.
  EXPECT_EQ(missing.OnEntry(dir / "a"), Step::kMoveWatch);
  EXPECT_EQ(missing.ancestor(), dir / "a/b/c");
  fs::create_directories(dir / "a/b/c/d");
  EXPECT_EQ(missing.OnEntry(dir / "a/b/c/d"), Step::kExists);
}

TEST(MissingWatch, EntriesOffTheWayOrAboveTheAncestorAreIgnored) {
  TempDir dir;
  fs::create_directory(dir / "runs");
  MissingWatch missing(dir / "runs/exp1");
  fs::create_directory(dir / "runs/exp10");  // a prefix of the name, not the name
  EXPECT_EQ(missing.OnEntry(dir / "runs/exp10"), Step::kWait);
  EXPECT_EQ(missing.OnEntry(dir.path()), Step::kWait);
  EXPECT_EQ(missing.OnEntry(dir / "runs"), Step::kWait);
  EXPECT_EQ(missing.ancestor(), dir / "runs");
}

TEST(MissingWatch, AFileTakingTheNameWaitsUntilItBecomesADirectory) {
  TempDir dir;
  MissingWatch missing(dir / "ckpt");
  WriteFile(dir / "ckpt");
  EXPECT_EQ(missing.OnEntry(dir / "ckpt"), Step::kWait);
  fs::remove(dir / "ckpt");
  fs::create_directory(dir / "ckpt");
  EXPECT_EQ(missing.OnEntry(dir / "ckpt"), Step::kExists);
}

TEST(MissingWatch, DeletedAncestorMovesTheWatchUp) {
  TempDir dir;
  fs::create_directories(dir / "a/b");
  MissingWatch missing(dir / "a/b/c");
  ASSERT_EQ(missing.ancestor(), dir / "a/b");
  fs::remove_all(dir / "a");
  EXPECT_EQ(missing.Refresh(), Step::kMoveWatch);
  EXPECT_EQ(missing.ancestor(), dir.path());
}

// The daemon's loop, with real inotify: a watch root deleted and recreated.
// kDirectoryGone on the root starts a MissingWatch; its ancestor is watched
// non-recursively until the root is back, then the real watch resumes.
TEST(MissingWatch, RootDeletedAndRecreatedIsWatchedAgain) {
  TempDir dir;
  const std::string root = dir / "runs/exp1";
  fs::create_directories(root);
  WatchError err;
  auto watcher = InotifyWatcher::Create(&err);
  ASSERT_NE(watcher, nullptr) << err.message;
  int id = watcher->AddWatch(root, /*recursive=*/true, &err);
  ASSERT_GT(id, 0) << err.message;

  fs::remove_all(dir / "runs");
  Events events =
      WaitForEvents(*watcher, [&](const Events& e) { return Has(e, Kind::kDirectoryGone, root); });
  ASSERT_TRUE(Has(events, Kind::kDirectoryGone, root));
  watcher->RemoveWatch(id);

  MissingWatch missing(root);
  ASSERT_EQ(missing.ancestor(), dir.path());
  int ancestor_id = watcher->AddWatch(missing.ancestor(), /*recursive=*/false, &err);
  ASSERT_GT(ancestor_id, 0) << err.message;

  fs::create_directory(dir / "runs");
  bool exists = false;
  for (int round = 0; round < 10 && !exists; ++round) {
    events = WaitForEvents(*watcher, [](const Events& e) { return !e.empty(); });
    ASSERT_FALSE(events.empty()) << "no event for the next component";
    for (const WatchEvent& event : events) {
      Step step = event.watch_id == ancestor_id ? missing.OnEntry(event.path) : Step::kWait;
      while (step == Step::kMoveWatch) {
        watcher->RemoveWatch(ancestor_id);
        ancestor_id = watcher->AddWatch(missing.ancestor(), /*recursive=*/false, &err);
        ASSERT_GT(ancestor_id, 0) << err.message;
        step = missing.Refresh();  // what appeared before this watch existed
      }
      if (step == Step::kExists) exists = true;
    }
    // The test plays the trainer: one more level each round.
    if (missing.ancestor() == dir / "runs") fs::create_directories(root);
  }
  ASSERT_TRUE(exists);
  watcher->RemoveWatch(ancestor_id);
  id = watcher->AddWatch(root, /*recursive=*/true, &err);
  ASSERT_GT(id, 0) << err.message;
  EXPECT_EQ(watcher->directory_count(), 1u);

  WriteFile(root + "/ckpt.h5");
  events = WaitForEvents(
      *watcher, [&](const Events& e) { return Has(e, Kind::kFileWritten, root + "/ckpt.h5"); });
  EXPECT_TRUE(Has(events, Kind::kFileWritten, root + "/ckpt.h5"));
}

}  // namespace
}  // namespace ckptwatch
