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

#include "base/unique_fd.h"

namespace ckptwatch {

/// What a name turned out to be.
enum class EntryKind {
  kRegular,        ///< Opened for reading.
  kNotRegular,     ///< FIFO, socket, device or directory: stat'ed, never opened.
  kSymlink,        ///< The name itself is a symlink (not followed).
  kSymlinkInPath,  ///< A directory on the way is a symlink, or ".." leaves the root.
  kMissing,        ///< ENOENT/ENOTDIR.
  kDenied,         ///< EACCES/EPERM.
  kWithheld,       ///< A hard link whose contents must not be read (link_disclosure.h): not opened.
  kError,          ///< Anything else; `error` says what.
};

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

/// Where a symlink at `relative` beneath `root_fd` leads.
enum class LinkTarget {
  kInside,    ///< Resolves to an existing entry inside the root.
  kDangling,  ///< Stays inside the root but names nothing (yet).
  kOutside,   ///< Leaves the root (absolute, or too many ".."), or cannot be resolved.
};

/// Resolves the symlink at `relative` beneath `root_fd` without ever looking
/// outside the root; `*text` gets the link's own contents (for the log).
LinkTarget ResolveLink(int root_fd, const std::string& relative, std::string* text);

/// "FIFO", "socket", "character device", "block device", "directory",
/// "symlink", "regular file" or "unknown file type".
const char* FileTypeName(mode_t mode);

}  // namespace ckptwatch
