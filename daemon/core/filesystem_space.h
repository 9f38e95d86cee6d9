// Reading a filesystem's free space, and what a user's disk quota leaves of it: the system calls
// behind Env::StatSpace() and Env::SpaceForFile() (RealEnv), kept out of the decision core.
#pragma once

#include <string>

#include "decide/save_cause.h"

namespace ckptwatch {

/// statvfs(`path`); false when it fails.
bool StatSpace(const std::string& path, FsSpace* out);

/// Lowers `space->avail` to what user `uid`'s disk quota on the filesystem of
/// `fd_on_fs` leaves (quotactl_fd, Q_GETQUOTA), and says so in `space->quota`,
/// when that is less. Without quotas, or without the privilege to read
/// another user's (CAP_SYS_ADMIN; not under the packaged unit), nothing changes.
void ApplyOwnerQuota(int fd_on_fs, unsigned uid, FsSpace* space);

}  // namespace ckptwatch
