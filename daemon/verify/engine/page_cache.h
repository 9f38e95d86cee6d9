// Leaving the page cache as we found it after reading a whole checkpoint.
#pragma once

#include <cstdint>
#include <vector>

namespace ckptwatch {

/// True when the kernel says every page of the file open at `fd` (`file_size` bytes) is in the
/// page cache (cachestat(2), Linux 6.5): reading it cannot wait on a disk or a server. False
/// when any is not, or the kernel or a syscall filter does not answer.
bool FullyCached(int fd, std::uint64_t file_size);

/// The same for `length` bytes from `offset`. The kernel counts page by page, so a small range is
/// cheap where the whole of a 10 GiB file takes ~10 ms.
bool RangeCached(int fd, std::uint64_t offset, std::uint64_t length);

/// Records which pages of a file are cached when constructed; on destruction
/// drops (POSIX_FADV_DONTNEED) only the pages that were not cached before, so
/// verifying a 10 GiB checkpoint does not evict the trainer's working set and
/// a warm file stays warm. Best effort: any failure leaves the cache alone.
class PageCacheGuard {
 public:
  PageCacheGuard(int fd, std::uint64_t file_size);
  ~PageCacheGuard();
  PageCacheGuard(const PageCacheGuard&) = delete;
  PageCacheGuard& operator=(const PageCacheGuard&) = delete;

  /// Pages that were not resident before and will be dropped (for tests).
  std::uint64_t pages_not_resident_before() const;

 private:
  int fd_;
  std::vector<unsigned char> resident_;  // one byte per page, bit 0 = resident
};

}  // namespace ckptwatch
