#include "verify/engine/page_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ckptwatch {
namespace {

// mincore() needs a mapping; map a window at a time so a huge file does not
// need address space the verifier's RLIMIT_AS would refuse.
constexpr std::uint64_t kWindowBytes = 64u << 20;

// cachestat(2) (Linux 6.5) counts a file's cached pages in one call; Debian 12's headers
// predate it. Its number is the same on every architecture (added after the tables merged).
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct CachestatRange {
  std::uint64_t off, len;
};
struct Cachestat {
  std::uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

std::uint64_t PageSize() { return static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)); }

}  // namespace

// The common case right after a save: every page is cached. Asking the kernel for the count is
// one call where mincore() is a page-table walk over every page (~18 ms per GiB here). False
// when the kernel, or a syscall filter that does not know the call (systemd 252's, which
// refuses it with EPERM), says nothing: the guard then asks page by page.
bool FullyCached(int fd, std::uint64_t file_size) { return RangeCached(fd, 0, file_size); }

bool RangeCached(int fd, std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return true;
  const std::uint64_t page = PageSize();
  const std::uint64_t first = offset / page, last = (offset + length - 1) / page;
  CachestatRange range{first * page, (last - first + 1) * page};
  Cachestat stat{};
  return syscall(__NR_cachestat, fd, &range, &stat, 0) == 0 && stat.nr_cache >= last - first + 1;
}

PageCacheGuard::PageCacheGuard(int fd, std::uint64_t file_size) : fd_(fd) {
  const std::uint64_t page = PageSize();
  const std::uint64_t pages = (file_size + page - 1) / page;
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  if (FullyCached(fd, file_size)) return;  // nothing to drop afterwards: resident_ stays empty
  std::vector<unsigned char> resident(pages);
  for (std::uint64_t offset = 0; offset < file_size; offset += kWindowBytes) {
    std::uint64_t length = std::min(kWindowBytes, file_size - offset);
    void* map = mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset));
    if (map == MAP_FAILED) return;  // resident_ stays empty: drop nothing
    int rc = mincore(map, length, resident.data() + offset / page);
    munmap(map, length);
    if (rc != 0) return;
  }
  resident_ = std::move(resident);
}

PageCacheGuard::~PageCacheGuard() {
  if (resident_.empty()) return;
  const std::uint64_t page = PageSize();
  // Drop each run of pages that were not resident before the read.
  std::uint64_t run_start = 0;
  bool in_run = false;
  for (std::uint64_t i = 0; i <= resident_.size(); ++i) {
    bool dropped = i < resident_.size() && !(resident_[i] & 1);
    if (dropped && !in_run) {
      run_start = i;
      in_run = true;
    } else if (!dropped && in_run) {
      posix_fadvise(fd_, static_cast<off_t>(run_start * page),
                    static_cast<off_t>((i - run_start) * page), POSIX_FADV_DONTNEED);
      in_run = false;
    }
  }
}

std::uint64_t PageCacheGuard::pages_not_resident_before() const {
  std::uint64_t n = 0;
  for (unsigned char r : resident_) n += !(r & 1);
  return n;
}

}  // namespace ckptwatch
