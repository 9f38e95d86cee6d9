// Opening a checkpoint for verification without being steered elsewhere.
//
// Whoever can write a watched directory controls the names in it: a name may
// be a symlink to a private file, a directory on the way may be swapped for a
// symlink between two system calls, and a FIFO or device named like a
// checkpoint blocks or has side effects when opened. The daemon holds every
// watch root as a directory descriptor and opens names relative to it with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); only regular files are ever
// opened for reading, through an O_PATH descriptor first checked with fstat.
#pragma once

#include <sys/stat.h>

#include <string>

#include "base/beneath_entry.h"
#include "base/unique_fd.h"

namespace ckptwatch {

struct OpenedEntry {
  EntryKind kind = EntryKind::kError;
  UniqueFd fd;      ///< O_RDONLY|O_NONBLOCK|O_CLOEXEC; set for kRegular only.
  struct stat st {};  ///< Of the entry itself (the link, for kSymlink); unset for errors.
  int error = 0;    ///< errno for kMissing, kDenied, kError, kSymlinkInPath.
  std::string withheld;  ///< For kWithheld: why (WhyLinkWithheld()).
};

/// Opens `relative` (no leading '/') beneath the directory `root_fd` for
/// reading: no symlink is followed in any component, nothing outside the root
/// is reached, and only a regular file is opened (O_NOATIME where allowed).
/// A file with more than one name whose reading could disclose it to someone
/// who cannot read it (WhyLinkWithheld()) comes back kWithheld, descriptor closed.
OpenedEntry OpenBeneath(int root_fd, const std::string& relative);

/// Like OpenBeneath() but never opens for reading: what the name is now.
OpenedEntry ProbeBeneath(int root_fd, const std::string& relative);

/// Opens the directory `relative` ("" for the root itself) beneath `root_fd`
/// for listing (O_RDONLY|O_DIRECTORY|O_CLOEXEC), no symlink followed. -1 with
/// errno on failure.
int OpenDirectoryBeneath(int root_fd, const std::string& relative);

/// Opens `path` as open(2) would — symlinks followed, relative to the working
/// directory — but only a regular file for reading, never a FIFO or device.
/// For the CLI, whose caller's own permissions decide (see DropCapabilities()).
OpenedEntry OpenRegularFile(const std::string& path);

/// Resolves the symlink at `relative` beneath `root_fd` without ever looking
/// outside the root; `*text` gets the link's own contents (for the log).
LinkTarget ResolveLink(int root_fd, const std::string& relative, std::string* text);

/// "FIFO", "socket", "character device", "block device", "directory",
/// "symlink", "regular file" or "unknown file type".
const char* FileTypeName(mode_t mode);

}  // namespace ckptwatch
