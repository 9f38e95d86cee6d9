#include "watch/inotify_watcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "watch/scan_directory.h"
#include "watch/watch_test_util.h"

namespace ckptwatch {
namespace {

using testing::Count;
using testing::Has;
using testing::ReadThroughMarker;
using testing::TempDir;
using testing::WaitForEvents;
using testing::WriteFile;
using Kind = WatchEvent::Kind;
using Events = std::vector<WatchEvent>;

namespace fs = std::filesystem;

std::unique_ptr<InotifyWatcher> NewWatcher() {
  WatchError err;
  auto watcher = InotifyWatcher::Create(&err);
  EXPECT_NE(watcher, nullptr) << err.message;
  return watcher;
}

int Watch(InotifyWatcher& watcher, const std::string& root, bool recursive = true) {
  WatchError err;
  int id = watcher.AddWatch(root, recursive, &err);
  EXPECT_GT(id, 0) << err.message;
  return id;
}

// Events of `kind` anywhere in `events`.
int CountKind(const Events& events, Kind kind) {
  int n = 0;
  for (const WatchEvent& e : events) n += e.kind == kind;
  return n;
}

TEST(InotifyWatcher, CloseAfterWritingIsOneFileWritten) {
  TempDir dir;
  auto watcher = NewWatcher();
  int id = Watch(*watcher, dir.path());

  int fd = open((dir / "a.h5").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(write(fd, "chunk", 5), 5);
  // Writes without a close are not worth a look yet.
  Events before_close = ReadThroughMarker(*watcher, dir / "marker1");
  EXPECT_FALSE(Has(before_close, Kind::kFileWritten, dir / "a.h5"));
  close(fd);

  Events events = ReadThroughMarker(*watcher, dir / "marker2");
  EXPECT_EQ(Count(events, Kind::kFileWritten, dir / "a.h5"), 1);
  EXPECT_EQ(events.size(), 2u);  // a.h5 and the marker, nothing else
  EXPECT_EQ(events.front().watch_id, id);
}

TEST(InotifyWatcher, ASaveUnderWayIsFileWritingUntilItsClose) {
  TempDir dir;
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());
  int fd = open((dir / "a.h5").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  Events created = ReadThroughMarker(*watcher, dir / "marker1", /*with_writing=*/true);
  EXPECT_EQ(Count(created, Kind::kFileWriting, dir / "a.h5"), 1);
  ASSERT_EQ(write(fd, "chunk", 5), 5);
  Events written = ReadThroughMarker(*watcher, dir / "marker2", /*with_writing=*/true);
  EXPECT_EQ(Count(written, Kind::kFileWriting, dir / "a.h5"), 1);
  EXPECT_FALSE(Has(written, Kind::kFileWritten, dir / "a.h5"));
  close(fd);
  Events closed = ReadThroughMarker(*watcher, dir / "marker3", /*with_writing=*/true);
  EXPECT_EQ(Count(closed, Kind::kFileWritten, dir / "a.h5"), 1);
  EXPECT_EQ(Count(closed, Kind::kFileWriting, dir / "a.h5"), 0);
}

TEST(InotifyWatcher, AtomicRenameIsOneFileWrittenForTheTarget) {
  TempDir dir;
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());

  WriteFile(dir / "x.h5.tmp", "weights");
  fs::rename(dir / "x.h5.tmp", dir / "x.h5");

  Events events = ReadThroughMarker(*watcher, dir / "marker");
  EXPECT_EQ(Count(events, Kind::kFileWritten, dir / "x.h5"), 1);
  // The temporary's own close is reported too; the daemon's pattern drops it.
  EXPECT_EQ(Count(events, Kind::kFileWritten, dir / "x.h5.tmp"), 1);
  // Its name going away lets the daemon forget it.
  EXPECT_EQ(Count(events, Kind::kNameGone, dir / "x.h5.tmp"), 1);
  EXPECT_EQ(events.size(), 4u);
}

TEST(InotifyWatcher, NewSubdirectoryIsWatchedBeforeItIsReported) {
  TempDir dir;
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());
  ASSERT_EQ(watcher->directory_count(), 1u);

  fs::create_directory(dir / "epoch1");
  Events events = WaitForEvents(
      *watcher, [&](const Events& e) { return Has(e, Kind::kDirectoryCreated, dir / "epoch1"); });
  ASSERT_TRUE(Has(events, Kind::kDirectoryCreated, dir / "epoch1"));
  EXPECT_EQ(watcher->directory_count(), 2u);

  WriteFile(dir / "epoch1/a.h5");
  events = ReadThroughMarker(*watcher, dir / "marker");
  EXPECT_TRUE(Has(events, Kind::kFileWritten, dir / "epoch1/a.h5"));
}

TEST(InotifyWatcher, TreeRenamedInIsWatchedWholeAndTheScanFindsEarlierFiles) {
  TempDir dir, staging;
  fs::create_directories(staging / "run/a/b");
  WriteFile(staging / "run/a/b/early.h5");
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());

  fs::rename(staging / "run", dir / "run");
  Events events = WaitForEvents(
      *watcher, [&](const Events& e) { return Has(e, Kind::kDirectoryCreated, dir / "run"); });
  ASSERT_TRUE(Has(events, Kind::kDirectoryCreated, dir / "run"));
  EXPECT_EQ(watcher->directory_count(), 4u);  // root, run, run/a, run/a/b

  // What the daemon does with kDirectoryCreated: scan, because early.h5 was
  // written before any watch existed and will never have an event.
  Snapshot snapshot;
  std::string err;
  ASSERT_TRUE(ScanDirectory(dir / "run", {}, &snapshot, &err)) << err;
  EXPECT_EQ(snapshot.files.count(dir / "run/a/b/early.h5"), 1u);

  WriteFile(dir / "run/a/b/late.h5");
  events = ReadThroughMarker(*watcher, dir / "marker");
  EXPECT_TRUE(Has(events, Kind::kFileWritten, dir / "run/a/b/late.h5"));
}

TEST(InotifyWatcher, NonRecursiveWatchReportsNewDirectoriesButNotTheirFiles) {
  TempDir dir;
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path(), /*recursive=*/false);

  fs::create_directory(dir / "sub");
  WriteFile(dir / "sub/a.h5");
  Events events = ReadThroughMarker(*watcher, dir / "marker");
  EXPECT_TRUE(Has(events, Kind::kDirectoryCreated, dir / "sub"));
  EXPECT_FALSE(Has(events, Kind::kFileWritten, dir / "sub/a.h5"));
  EXPECT_EQ(watcher->directory_count(), 1u);
}

TEST(InotifyWatcher, DeletedSubdirectoryIsGoneOnceAndItsRecreationIsWatched) {
  TempDir dir;
  fs::create_directory(dir / "sub");
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());
  ASSERT_EQ(watcher->directory_count(), 2u);

  fs::remove(dir / "sub");
  Events events = ReadThroughMarker(*watcher, dir / "marker1");
  // IN_DELETE_SELF then IN_IGNORED: one report.
  EXPECT_EQ(Count(events, Kind::kDirectoryGone, dir / "sub"), 1);
  EXPECT_EQ(watcher->directory_count(), 1u);

  fs::create_directory(dir / "sub");
  // Written before ReadEvents() has seen the new directory, so before it is
  // watched: no event, which is why kDirectoryCreated means "scan it".
  WriteFile(dir / "sub/early.h5");
  events = ReadThroughMarker(*watcher, dir / "marker2");
  EXPECT_TRUE(Has(events, Kind::kDirectoryCreated, dir / "sub"));
  EXPECT_FALSE(Has(events, Kind::kFileWritten, dir / "sub/early.h5"));
  EXPECT_EQ(watcher->directory_count(), 2u);

  WriteFile(dir / "sub/late.h5");
  events = ReadThroughMarker(*watcher, dir / "marker3");
  EXPECT_TRUE(Has(events, Kind::kFileWritten, dir / "sub/late.h5"));
}

TEST(InotifyWatcher, DeletedRootIsGoneOnce) {
  TempDir dir, other;
  fs::create_directories(dir / "root/sub");
  auto watcher = NewWatcher();
  int id = Watch(*watcher, dir / "root");
  Watch(*watcher, other.path());  // only to carry the marker

  fs::remove_all(dir / "root");
  Events events = ReadThroughMarker(*watcher, other / "marker");
  EXPECT_EQ(Count(events, Kind::kDirectoryGone, dir / "root"), 1);
  EXPECT_EQ(Count(events, Kind::kDirectoryGone, dir / "root/sub"), 1);
  for (const WatchEvent& e : events) {
    if (e.kind == Kind::kDirectoryGone) {
      EXPECT_EQ(e.watch_id, id);
    }
  }
  EXPECT_EQ(watcher->directory_count(), 1u);  // the marker's root
}

TEST(InotifyWatcher, DirectoryRenamedWithinTheTreeReportsUnderItsNewPath) {
  TempDir dir;
  fs::create_directories(dir / "a/b");
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());

  fs::rename(dir / "a", dir / "c");
  WriteFile(dir / "c/b/f.h5");
  Events events = ReadThroughMarker(*watcher, dir / "marker");
  EXPECT_TRUE(Has(events, Kind::kDirectoryCreated, dir / "c"));
  EXPECT_TRUE(Has(events, Kind::kFileWritten, dir / "c/b/f.h5"));
  EXPECT_EQ(CountKind(events, Kind::kDirectoryGone), 0);
  EXPECT_EQ(watcher->directory_count(), 3u);
  // The old name's going says where it went: its pending files moved, they did not vanish.
  int gone = 0;
  for (const WatchEvent& e : events) {
    if (e.kind != Kind::kNameGone || e.path != (dir / "a")) continue;
    ++gone;
    EXPECT_EQ(e.moved_to, (dir / "c"));
  }
  EXPECT_EQ(gone, 1);
}

TEST(InotifyWatcher, FileRenamedWithinTheTreeSaysWhereItWentAndADeleteDoesNot) {
  TempDir dir;
  fs::create_directories(dir / "sub");
  WriteFile(dir / "staged.h5");
  WriteFile(dir / "doomed.h5");
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());
  fs::rename(dir / "staged.h5", dir / "sub/final.h5");
  fs::remove(dir / "doomed.h5");
  Events events = ReadThroughMarker(*watcher, dir / "marker");
  for (const WatchEvent& e : events) {
    if (e.kind != Kind::kNameGone) continue;
    if (e.path == (dir / "staged.h5")) EXPECT_EQ(e.moved_to, (dir / "sub/final.h5"));
    else EXPECT_EQ(e.moved_to, "") << e.path;
  }
  EXPECT_TRUE(Has(events, Kind::kNameGone, dir / "doomed.h5"));
  EXPECT_TRUE(Has(events, Kind::kFileWritten, dir / "sub/final.h5"));
}

TEST(InotifyWatcher, DirectoryMovedOutOfTheTreeIsGoneAndSilent) {
  TempDir dir, outside;
  fs::create_directories(dir / "sub/deeper");
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());

  fs::rename(dir / "sub", outside / "sub");
  Events events = ReadThroughMarker(*watcher, dir / "marker1");
  EXPECT_TRUE(Has(events, Kind::kDirectoryGone, dir / "sub"));
  for (const WatchEvent& e : events) EXPECT_EQ(e.moved_to, "") << "moved out of the tree: gone";
  EXPECT_EQ(watcher->directory_count(), 1u);

  WriteFile(outside / "sub/f.h5");
  WriteFile(outside / "sub/deeper/g.h5");
  events = ReadThroughMarker(*watcher, dir / "marker2");
  EXPECT_EQ(events.size(), 1u) << "only the marker";
}

TEST(InotifyWatcher, PermissionChangeIsAttributesChanged) {
  TempDir dir;
  WriteFile(dir / "a.h5");
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());

  ASSERT_EQ(chmod((dir / "a.h5").c_str(), 0600), 0);
  Events events = ReadThroughMarker(*watcher, dir / "marker");
  EXPECT_TRUE(Has(events, Kind::kAttributesChanged, dir / "a.h5"));
}

TEST(InotifyWatcher, SymlinkedDirectoriesAreNotFollowed) {
  TempDir dir, outside;
  fs::create_directory_symlink(outside.path(), dir / "early_link");
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());
  EXPECT_EQ(watcher->directory_count(), 1u);

  fs::create_directory_symlink(outside.path(), dir / "late_link");
  WriteFile(outside / "f.h5");
  Events events = ReadThroughMarker(*watcher, dir / "marker");
  // The new link itself is reported (as a name the daemon then classifies,
  // never follows); nothing written behind it is.
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, WatchEvent::Kind::kFileWritten);
  EXPECT_EQ(events[0].path, dir / "late_link");
  EXPECT_EQ(events[1].path, dir / "marker");
  EXPECT_EQ(watcher->directory_count(), 1u);
}

TEST(InotifyWatcher, ANewFifoOrSymlinkIsReportedWhenItAppears) {
  TempDir dir;
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());
  ASSERT_EQ(mkfifo((dir / "x.h5").c_str(), 0600), 0);
  ASSERT_EQ(symlink("x.h5", (dir / "last.h5").c_str()), 0);
  WriteFile(dir / "regular.h5");  // reported once, at its close, not at its creation
  Events events = ReadThroughMarker(*watcher, dir / "marker");
  std::vector<std::string> paths;
  for (const WatchEvent& e : events) paths.push_back(e.path);
  EXPECT_EQ(paths, (std::vector<std::string>{dir / "x.h5", dir / "last.h5", dir / "regular.h5",
                                             dir / "marker"}));
}

TEST(InotifyWatcher, QueueOverflowIsAnOverflowEventAndWatchesAreResynced) {
  const long max_events = ReadInotifySysctl("max_queued_events");
  ASSERT_GT(max_events, 0);
  if (max_events > (1 << 20)) GTEST_SKIP() << "max_queued_events too large: " << max_events;
  TempDir dir;
  WriteFile(dir / "a");
  fs::create_directory(dir / "old_dir");
  auto watcher = NewWatcher();
  int id = Watch(*watcher, dir.path());
  ASSERT_EQ(watcher->directory_count(), 2u);

  // Without reading, rename back and forth: each rename queues a distinct
  // IN_MOVED_TO (the kernel merges only identical consecutive events), so
  // the queue fills deterministically, with no sysctl change.
  for (long i = 0; i <= max_events; ++i) {
    bool even = i % 2 == 0;
    ASSERT_EQ(rename((dir / (even ? "a" : "b")).c_str(), (dir / (even ? "b" : "a")).c_str()), 0);
  }
  // Lost with the queue full: the creation of one directory and the
  // deletion of another.
  fs::remove(dir / "old_dir");
  fs::create_directory(dir / "new_dir");
  Events events;
  watcher->ReadEvents(&events);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(CountKind(events, Kind::kOverflow), 1);
  const WatchEvent& last = events.back();
  EXPECT_EQ(last.kind, Kind::kOverflow);
  EXPECT_EQ(last.watch_id, id);
  EXPECT_EQ(last.path, dir.path());
  EXPECT_NE(last.reason.find("fs.inotify.max_queued_events = " + std::to_string(max_events)),
            std::string::npos)
      << last.reason;

  // Watches were brought back in line with the tree before the event was
  // returned, and the instance keeps working.
  EXPECT_EQ(watcher->directory_count(), 2u);  // root and new_dir
  WriteFile(dir / "new_dir/f.h5");
  events = ReadThroughMarker(*watcher, dir / "marker");
  EXPECT_TRUE(Has(events, Kind::kFileWritten, dir / "new_dir/f.h5"));
}

// Runs in a child process inside a new user namespace with
// user.max_inotify_watches = 2, and watches a tree of three directories.
// Reports "<errno of that AddWatch> <directory_count after it> <id of a
// second, two-directory AddWatch>" and the error message on the next line,
// or "skip <why>" where user namespaces are not available.
std::string AddWatchesUnderALimitOfTwo(const TempDir& dir) {
  if (unshare(CLONE_NEWUSER) != 0) return "skip unshare(CLONE_NEWUSER) failed";
  std::ofstream("/proc/self/uid_map") << "0 0 1\n";
  std::ofstream limit("/proc/sys/user/max_inotify_watches");
  limit << "2\n";
  limit.close();
  if (!limit) return "skip cannot set user.max_inotify_watches";
  WatchError err;
  // Created after unshare(): the instance is charged to the new namespace.
  auto watcher = InotifyWatcher::Create(&err);
  if (watcher == nullptr) return "skip " + err.message;
  int first = watcher->AddWatch(dir.path(), /*recursive=*/true, &err);
  std::size_t count = watcher->directory_count();
  WatchError second_err;
  int second = watcher->AddWatch(dir / "a", /*recursive=*/true, &second_err);
  return std::to_string(first < 0 ? err.error : 0) + " " + std::to_string(count) + " " +
         std::to_string(second) + "\n" + err.message;
}

// ENOSPC for real, without touching the host's limit: a user namespace has
// its own user.max_inotify_watches.
TEST(InotifyWatcher, WatchLimitIsAnActionableErrorAndNothingStaysWatched) {
  TempDir dir;
  fs::create_directories(dir / "a/b");
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipe_fds[0]);
    std::string report = AddWatchesUnderALimitOfTwo(dir);
    ssize_t written = write(pipe_fds[1], report.data(), report.size());
    _exit(written == static_cast<ssize_t>(report.size()) ? 0 : 1);
  }
  close(pipe_fds[1]);
  std::string report;
  char buffer[4096];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0;) report.append(buffer, n);
  close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << report;
  if (report.starts_with("skip")) GTEST_SKIP() << report;

  std::istringstream in(report);
  int error = 0, second = 0;
  std::size_t count = 0;
  in >> error >> count >> second;
  std::string message;
  std::getline(in >> std::ws, message);
  EXPECT_EQ(error, ENOSPC);
  EXPECT_EQ(count, 0u) << "a partial tree must not stay watched";
  EXPECT_GT(second, 0) << "the rolled-back watches must be released";
  EXPECT_NE(message.find("cannot watch " + dir.path()), std::string::npos) << message;
  EXPECT_NE(message.find("fs.inotify.max_user_watches = " +
                         std::to_string(ReadInotifySysctl("max_user_watches"))),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("backend: poll"), std::string::npos) << message;
}

TEST(InotifyWatcher, WatchLimitMessageNamesTheSysctlAndAValueToRaiseItTo) {
  std::string message = FormatWatchLimitError("/ckpt/run7", 8192);
  EXPECT_EQ(message,
            "cannot watch /ckpt/run7: inotify watch limit reached "
            "(fs.inotify.max_user_watches = 8192); raise it, e.g. `sysctl -w "
            "fs.inotify.max_user_watches=524288` and persist it in /etc/sysctl.d/, or set "
            "`backend: poll` for this watch");
  EXPECT_NE(FormatWatchLimitError("/c", -1).find("max_user_watches = unknown"), std::string::npos);
  EXPECT_EQ(SuggestedMaxUserWatches(8192), 524288);
  EXPECT_EQ(SuggestedMaxUserWatches(-1), 524288);
  EXPECT_EQ(SuggestedMaxUserWatches(1048576), 2097152);
}

TEST(InotifyWatcher, MissingRootOrFileRootIsAnError) {
  TempDir dir;
  WriteFile(dir / "file");
  auto watcher = NewWatcher();
  WatchError err;
  EXPECT_EQ(watcher->AddWatch(dir / "nope", true, &err), -1);
  EXPECT_EQ(err.error, ENOENT);
  EXPECT_NE(err.message.find(dir / "nope"), std::string::npos) << err.message;
  EXPECT_FALSE(err.watch_limit());
  EXPECT_EQ(watcher->AddWatch(dir / "file", true, &err), -1);
  EXPECT_EQ(err.error, ENOTDIR);
  EXPECT_EQ(watcher->directory_count(), 0u);
}

TEST(InotifyWatcher, RemovedWatchIsSilent) {
  TempDir a, b;
  auto watcher = NewWatcher();
  int id_a = Watch(*watcher, a.path());
  int id_b = Watch(*watcher, b.path());
  WriteFile(a / "queued_before_removal.h5");
  watcher->RemoveWatch(id_a);
  EXPECT_EQ(watcher->directory_count(), 1u);

  WriteFile(a / "after.h5");
  Events events = ReadThroughMarker(*watcher, b / "marker");
  ASSERT_EQ(events.size(), 1u) << "only the marker";
  EXPECT_EQ(events[0].watch_id, id_b);
}

TEST(InotifyWatcher, NestedWatchesEachGetTheEvent) {
  TempDir dir;
  fs::create_directory(dir / "sub");
  auto watcher = NewWatcher();
  int outer = Watch(*watcher, dir.path());
  int inner = Watch(*watcher, dir / "sub/");  // trailing slash must not matter
  EXPECT_EQ(watcher->directory_count(), 2u);

  WriteFile(dir / "sub/f.h5");
  Events events = ReadThroughMarker(*watcher, dir / "marker");
  ASSERT_EQ(Count(events, Kind::kFileWritten, dir / "sub/f.h5"), 2);
  EXPECT_NE(events[0].watch_id, events[1].watch_id);
  EXPECT_TRUE(events[0].watch_id == outer || events[0].watch_id == inner);

  // The outer watch still needs sub's kernel watch.
  watcher->RemoveWatch(inner);
  EXPECT_EQ(watcher->directory_count(), 2u);
  WriteFile(dir / "sub/g.h5");
  events = ReadThroughMarker(*watcher, dir / "marker");
  ASSERT_EQ(Count(events, Kind::kFileWritten, dir / "sub/g.h5"), 1);
  EXPECT_EQ(events[0].watch_id, outer);
}

struct UvState {
  InotifyWatcher* watcher = nullptr;
  std::string want;
  Events events;
  bool found = false;
};

// What the daemon's uv_poll callback does, minus the settle queue.
void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* state = static_cast<UvState*>(handle->data);
  if (status == 0) {
    state->watcher->ReadEvents(&state->events);
    state->found = Has(state->events, Kind::kFileWritten, state->want);
  }
  if (status < 0 || state->found) uv_stop(handle->loop);
}

void OnDeadline(uv_timer_t* handle) { uv_stop(handle->loop); }

// How the daemon runs it: the descriptor on a uv_poll_t, ReadEvents() in the
// callback; a uv_timer is the test's deadline.
TEST(InotifyWatcher, WorksOnALibuvPollHandle) {
  TempDir dir;
  auto watcher = NewWatcher();
  Watch(*watcher, dir.path());
  UvState state;
  state.watcher = watcher.get();
  state.want = dir / "ckpt.h5";

  uv_loop_t loop;
  uv_poll_t poll;
  uv_timer_t timer;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  ASSERT_EQ(uv_poll_init(&loop, &poll, watcher->fd()), 0);
  ASSERT_EQ(uv_timer_init(&loop, &timer), 0);
  poll.data = &state;
  EXPECT_EQ(uv_poll_start(&poll, UV_READABLE, OnReadable), 0);
  EXPECT_EQ(uv_timer_start(&timer, OnDeadline, 5000, 0), 0);

  WriteFile(dir / "ckpt.h5");
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_TRUE(state.found);

  uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  EXPECT_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);  // runs the close callbacks
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace ckptwatch
