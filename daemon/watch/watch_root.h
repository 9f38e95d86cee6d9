// Opening a configured watch root. The path comes from the administrator, but
// the directories on it may not be theirs: a user who can write the parent of
// a watch root (or of a root that does not exist yet) could put a symlink
// there that leads the privileged daemon into a private directory. So a
// symlink on the way is followed only when root owns it — one an
// administrator made, as for `/data -> /mnt/nvme0/data` — and the daemon
// keeps the directory it found as a descriptor: later renames and swaps of
// the path do not move the watch.
#pragma once

#include <string>

#include "base/unique_fd.h"

namespace ckptwatch {

/// Opens the absolute `path` as a directory (O_RDONLY|O_DIRECTORY), following
/// symlinks owned by root only. False with `*err` (a sentence) and `*error`
/// (ENOENT or ENOTDIR: not there (yet); ELOOP: a symlink not owned by root, or
/// too many; other errno values as open(2)).
bool OpenWatchRoot(const std::string& path, UniqueFd* fd, std::string* err, int* error);

/// True when OpenWatchRoot(path) would succeed now.
bool IsTrustedDirectory(const std::string& path);

}  // namespace ckptwatch
