#include "watch/open_writers.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace ckptwatch {
namespace {

// A child process that opens `path` with `flags` (as `uid` when not root's
// 0, after raising its descriptor limit to hold `extra` more descriptors on
// /dev/null), says so on a pipe and holds everything until told to go.
class Holder {
 public:
  Holder(const std::string& path, int flags, uid_t uid = 0, int extra = 0) {
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      close(ready[0]);
      close(go[1]);
      rlimit limit{static_cast<rlim_t>(extra + 64), static_cast<rlim_t>(extra + 64)};
      if (extra > 0 && setrlimit(RLIMIT_NOFILE, &limit) != 0) _exit(3);
      if (uid != 0 && setuid(uid) != 0) _exit(4);
      for (int i = 0; i < extra; ++i)
        if (open("/dev/null", O_RDONLY) < 0) _exit(5);
      if (!path.empty() && open(path.c_str(), flags) < 0) _exit(6);
      char c = 'r';
      if (write(ready[1], &c, 1) != 1) _exit(7);
      if (read(go[0], &c, 1) < 0) _exit(8);
      _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    go_ = go[1];
    char c = 0;
    ok_ = read(ready[0], &c, 1) == 1;
    close(ready[0]);
  }
  ~Holder() {
    close(go_);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  bool ok() const { return ok_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
  bool ok_ = false;
};

class OpenWritersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/open_writers_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/ckpt.h5";
    int fd = open(path_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "data", 4), 4);
    close(fd);
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  OpenWriters Ask(OpenWriterIndex& index, std::string* who,
                  OpenWriterIndex::Clock::time_point now = OpenWriterIndex::Clock::time_point{}) {
    int fd = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    fstat(fd, &st);
    OpenWriters answer = index.Query(fd, st, now, who, now);
    close(fd);
    return answer;
  }
  std::string dir_, path_;
};

TEST_F(OpenWritersTest, LeaseSaysNoneForAClosedFileAndSomeWhileAWriterHoldsIt) {
  int fd = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ProbeWritersByLease(fd), OpenWriters::kNone);
  {
    Holder writer(path_, O_WRONLY);
    ASSERT_TRUE(writer.ok());
    EXPECT_EQ(ProbeWritersByLease(fd), OpenWriters::kSome);
  }
  {
    Holder reader(path_, O_RDONLY);  // readers are not writers
    ASSERT_TRUE(reader.ok());
    EXPECT_EQ(ProbeWritersByLease(fd), OpenWriters::kNone);
  }
  // The probe gave its lease back: a writer opening now is not held up.
  Holder late(path_, O_RDWR | O_NONBLOCK);
  EXPECT_TRUE(late.ok());
  close(fd);
}

TEST_F(OpenWritersTest, HolderIsNamedWithinTheRateThenOnlyCounted) {
  Holder writer(path_, O_RDWR);
  ASSERT_TRUE(writer.ok());
  OpenWriterIndex index;
  std::string who;
  const auto t0 = OpenWriterIndex::Clock::time_point{} + std::chrono::hours(1);
  ASSERT_EQ(Ask(index, &who, t0), OpenWriters::kSome);
  EXPECT_EQ(who.rfind("pid " + std::to_string(writer.pid()) + " (", 0), 0u) << who;
  for (int i = 1; i < OpenWriterIndex::kNamesPerSecond; ++i) Ask(index, &who, t0);
  // Past the rate the answer is still exact, only unnamed, until the next second.
  EXPECT_EQ(Ask(index, &who, t0 + std::chrono::milliseconds(999)), OpenWriters::kSome);
  EXPECT_EQ(who, "a process");
  EXPECT_EQ(Ask(index, &who, t0 + std::chrono::seconds(1)), OpenWriters::kSome);
  EXPECT_EQ(who.rfind("pid " + std::to_string(writer.pid()) + " (", 0), 0u) << who;
}

TEST_F(OpenWritersTest, WalkFindsAWriterAndChargesEachUidItsOwnBound) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: a second uid holds the descriptors";
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  const auto key = std::make_pair(st.st_dev, st.st_ino);
  Holder writer(path_, O_WRONLY);
  ASSERT_TRUE(writer.ok());
  OpenWriterIndex::Walk walk = OpenWriterIndex::WalkProc(std::nullopt, std::nullopt);
  ASSERT_TRUE(walk.visible);
  ASSERT_TRUE(walk.writers.count(key));
  EXPECT_EQ(walk.writers[key].rfind("pid " + std::to_string(writer.pid()), 0), 0u);
  // Another uid holding more descriptors than its bound: the walk is no longer
  // complete, but root's writer is still found (the hog pays only for itself).
  Holder hog("", 0, 65534, static_cast<int>(OpenWriterIndex::kMaxDescriptorsPerUid) + 500);
  ASSERT_TRUE(hog.ok());
  walk = OpenWriterIndex::WalkProc(std::nullopt, std::nullopt);
  EXPECT_FALSE(walk.complete);
  EXPECT_TRUE(walk.writers.count(key));
  walk = OpenWriterIndex::WalkProc(0u, key);
  EXPECT_TRUE(walk.writers.count(key));
}

TEST_F(OpenWritersTest, WithoutALeaseAnIncompleteWalkIsUnknownNeverNone) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the reader drops to nobody";
  // A reader that may not take a lease on this file (nobody: not its owner, no
  // CAP_LEASE) and cannot see root's descriptors falls back to the walk,
  // which says it cannot tell.
  ASSERT_EQ(chmod(path_.c_str(), 0644), 0);
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  pid_t child = fork();
  if (child == 0) {
    if (setuid(65534) != 0) _exit(10);
    int fd = open(path_.c_str(), O_RDONLY | O_NONBLOCK);
    if (fd < 0) _exit(11);
    if (ProbeWritersByLease(fd).has_value()) _exit(12);
    struct stat st;
    fstat(fd, &st);
    OpenWriterIndex index;
    std::string who;
    _exit(index.Query(fd, st, OpenWriterIndex::Clock::now(), &who) == OpenWriters::kUnknown ? 0
                                                                                            : 13);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace ckptwatch
