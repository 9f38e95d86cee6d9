// Whether verifying a hard-linked file could tell someone about a file they cannot read.
//
// With fs.protected_hardlinks=0, anyone who can write a watched directory can hard-link into
// it any file they can reach — a root-only 0600 checkpoint included — without being able to
// read it. The daemon reads every file (CAP_DAC_READ_SEARCH), and its verdicts (class names,
// parameter counts, NaN counts) go to the log and /metrics. A file with more than one name is
// therefore read only when that discloses nothing: when every user can read it anyway, or when
// nobody but its owner (or root) can have put this name where it is.
#pragma once

#include <sys/stat.h>

#include <string>

namespace ckptwatch {

/// Why the contents of the regular file `file` (open at `file_fd`, O_RDONLY; never read
/// here), reached by a name in the directory described by `dir`, must not be read for a
/// verdict; empty when reading them discloses nothing. The rule (docs/security.md): a file
/// with one name is read; one with more names is read only when it is readable by everyone
/// (r for owner, group and other, no ACL) or when the directory is writable by the file's
/// owner or root alone (owned by one of them, no write for group or other: with an ACL the
/// group bits are its mask, which bounds every named user and group).
std::string WhyLinkWithheld(const struct stat& file, int file_fd, const struct stat& dir);

}  // namespace ckptwatch
