#include "verify/engine/page_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ckptwatch {
namespace {

// 32 MiB: the evicted half is whole large folios (up to 2 MiB on ext4), which is what
// POSIX_FADV_DONTNEED drops.
constexpr std::size_t kPages = 8192;

// A real file on a disk-backed filesystem (tmpfs pages cannot be dropped), written and synced
// so that its pages are clean and POSIX_FADV_DONTNEED really evicts them.
class PageCacheGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    char name[] = "/var/tmp/ckptwatch-page-cache-XXXXXX";
    fd_ = mkstemp(name);
    ASSERT_GE(fd_, 0);
    path_ = name;
    std::vector<char> bytes(kPages * page_, 'x');
    ASSERT_EQ(write(fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ASSERT_EQ(fsync(fd_), 0);
  }
  void TearDown() override {
    close(fd_);
    unlink(path_.c_str());
  }
  void Evict(std::size_t first_page, std::size_t count) {
    ASSERT_EQ(posix_fadvise(fd_, static_cast<off_t>(first_page * page_), static_cast<off_t>(count * page_),
                            POSIX_FADV_DONTNEED),
              0);
  }
  void ReadAll() {
    std::vector<char> buffer(kPages * page_);
    ASSERT_EQ(pread(fd_, buffer.data(), buffer.size(), 0), static_cast<ssize_t>(buffer.size()));
  }
  std::vector<bool> Resident() {
    void* map = mmap(nullptr, kPages * page_, PROT_READ, MAP_SHARED, fd_, 0);
    EXPECT_NE(map, MAP_FAILED);
    std::vector<unsigned char> vec(kPages);
    EXPECT_EQ(mincore(map, kPages * page_, vec.data()), 0);
    munmap(map, kPages * page_);
    return std::vector<bool>(vec.begin(), vec.end());
  }
  std::size_t page_ = 4096;
  int fd_ = -1;
  std::string path_;
};

TEST_F(PageCacheGuardTest, AWarmFileStaysWarmAndNothingIsDropped) {
  ReadAll();
  {
    PageCacheGuard guard(fd_, kPages * page_);
    EXPECT_EQ(guard.pages_not_resident_before(), 0u);
    ReadAll();
  }
  for (bool r : Resident()) EXPECT_TRUE(r);
}

TEST_F(PageCacheGuardTest, OnlyThePagesTheReadBroughtInAreDropped) {
  ReadAll();
  Evict(kPages / 2, kPages / 2);
  const std::vector<bool> before = Resident();
  ASSERT_FALSE(before[kPages - 1]) << "/var/tmp must be a filesystem that drops clean pages on request";
  {
    PageCacheGuard guard(fd_, kPages * page_);
    EXPECT_EQ(guard.pages_not_resident_before(), kPages / 2);
    ReadAll();
  }
  const std::vector<bool> after = Resident();
  for (std::size_t i = 0; i < kPages; ++i) EXPECT_EQ(after[i], i < kPages / 2) << "page " << i;
}

// What `ckptwatch verify --level header` asks before it reads inline rather than on a thread.
TEST_F(PageCacheGuardTest, FullyCachedIsTrueOnlyWhenEveryPageIs) {
  // A kernel before 6.5 has no cachestat(2): then the answer is always "not known", false.
  const bool kernel_answers = syscall(451, -1, nullptr, nullptr, 0) != 0 && errno != ENOSYS;
  ReadAll();
  EXPECT_EQ(FullyCached(fd_, kPages * page_), kernel_answers);
  Evict(kPages / 2, kPages / 2);
  EXPECT_FALSE(FullyCached(fd_, kPages * page_));
  EXPECT_EQ(RangeCached(fd_, 0, kPages / 2 * page_), kernel_answers);
  EXPECT_FALSE(RangeCached(fd_, kPages / 2 * page_, 1));
  EXPECT_FALSE(RangeCached(fd_, kPages / 2 * page_ - 1, 2));  // straddles into the evicted half
}

}  // namespace
}  // namespace ckptwatch
