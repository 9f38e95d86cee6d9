#include "core/filesystem_space.h"

#include <sys/quota.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

namespace ckptwatch {

bool StatSpace(const std::string& path, FsSpace* out) {
  struct statvfs fs;
  if (statvfs(path.c_str(), &fs) != 0) return false;
  out->avail = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  out->size = static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize;
  return true;
}

void ApplyOwnerQuota(int fd_on_fs, unsigned uid, FsSpace* space) {
#ifdef SYS_quotactl_fd
  struct dqblk q {};
  if (syscall(SYS_quotactl_fd, fd_on_fs, QCMD(Q_GETQUOTA, USRQUOTA), uid, &q) != 0) return;
  // Limits are in 1 KiB blocks, usage in bytes; the soft limit binds once
  // its grace time is over, which the kernel shows as a past btime.
  std::uint64_t limit = 0;
  if ((q.dqb_valid & QIF_BLIMITS) && q.dqb_bhardlimit > 0) limit = q.dqb_bhardlimit * 1024;
  if ((q.dqb_valid & QIF_BLIMITS) && q.dqb_bsoftlimit > 0 && q.dqb_btime != 0 &&
      static_cast<std::time_t>(q.dqb_btime) <= std::time(nullptr) &&
      (limit == 0 || q.dqb_bsoftlimit * 1024 < limit))
    limit = q.dqb_bsoftlimit * 1024;
  if (limit == 0 || !(q.dqb_valid & QIF_SPACE)) return;
  const std::uint64_t left = q.dqb_curspace >= limit ? 0 : limit - q.dqb_curspace;
  if (left >= space->avail) return;
  space->avail = left;
  space->quota = "uid " + std::to_string(uid) + "'s disk quota (" + HumanBytes(q.dqb_curspace) +
                 " used of " + HumanBytes(limit) + ")";
#else
  (void)fd_on_fs;
  (void)uid;
  (void)space;
#endif
}

}  // namespace ckptwatch
