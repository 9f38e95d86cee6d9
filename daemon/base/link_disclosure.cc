#include "base/link_disclosure.h"

#include <sys/xattr.h>

#include <cstdio>

namespace ckptwatch {
namespace {

// The kernel keeps this attribute only for an ACL the mode bits cannot express (setfacl -b
// removes it): its presence is an extended ACL, without libacl in the light front.
bool HasExtendedAcl(int fd) { return fgetxattr(fd, "system.posix_acl_access", nullptr, 0) >= 0; }

}  // namespace

std::string WhyLinkWithheld(const struct stat& file, int file_fd, const struct stat& dir) {
  if (file.st_nlink <= 1) return "";
  // Readable by everyone: whoever linked it, and whoever reads the verdict, could read it
  // through this very name. A named ACL entry could shut one user out, so any ACL disqualifies.
  constexpr mode_t kReadAll = S_IRUSR | S_IRGRP | S_IROTH;
  if ((file.st_mode & kReadAll) == kReadAll && !HasExtendedAcl(file_fd)) return "";
  // Only the owner (or root, who may read it anyway) could have made this name: the link is
  // the owner's own. A sticky directory (/tmp) is writable by all: anyone may link into it.
  const bool owner_alone =
      (dir.st_uid == file.st_uid || dir.st_uid == 0) && (dir.st_mode & (S_IWGRP | S_IWOTH)) == 0;
  if (owner_alone) return "";
  char why[320];
  std::snprintf(why, sizeof why,
                "not read: a file with %lu names (a hard link), of uid %u, mode %04o%s, in a "
                "directory others may write (uid %u, mode %04o): whoever linked it there may "
                "not be able to read it, so its contents are withheld (docs/security.md)",
                static_cast<unsigned long>(file.st_nlink), static_cast<unsigned>(file.st_uid),
                static_cast<unsigned>(file.st_mode & 07777),
                (file.st_mode & kReadAll) == kReadAll ? " with an ACL" : "",
                static_cast<unsigned>(dir.st_uid), static_cast<unsigned>(dir.st_mode & 07777));
  return why;
}

}  // namespace ckptwatch
