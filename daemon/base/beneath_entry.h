// What a name beneath a watch root turned out to be, and where a symlink there leads: the
// answers of open_beneath.h as values, for whoever reasons about them without opening anything
// (the decision core's Env port, decide/env.h).
#pragma once

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

/// Where a symlink at `relative` beneath `root_fd` leads.
enum class LinkTarget {
  kInside,    ///< Resolves to an existing entry inside the root.
  kDangling,  ///< Stays inside the root but names nothing (yet).
  kOutside,   ///< Leaves the root (absolute, or too many ".."), or cannot be resolved.
};

}  // namespace ckptwatch
