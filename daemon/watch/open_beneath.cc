#include "open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "link_disclosure.h"

namespace ckptwatch {
namespace {

constexpr int kReadFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
// Nothing outside the root, no symlink anywhere on the way.
constexpr std::uint64_t kBeneathNoSymlinks = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

int OpenAt2(int dir_fd, const std::string& path, std::uint64_t flags, std::uint64_t resolve) {
  open_how how{};
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dir_fd, path.c_str(), &how, sizeof how));
}

std::vector<std::string_view> Components(const std::string& path) {
  std::vector<std::string_view> parts;
  std::string_view rest(path);
  while (!rest.empty()) {
    std::size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (!part.empty() && part != ".") parts.push_back(part);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return parts;
}

// Kernels before 5.6 have no openat2: walk one component at a time with
// O_NOFOLLOW, which is what RESOLVE_NO_SYMLINKS does in one call.
int WalkNoFollow(int root_fd, const std::string& relative) {
  std::vector<std::string_view> parts = Components(relative);
  if (parts.empty()) return fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  UniqueFd dir;
  int at = root_fd;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "..") {
      errno = EXDEV;
      return -1;
    }
    const bool last = i + 1 == parts.size();
    int fd = openat(at, std::string(parts[i]).c_str(),
                    O_PATH | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY));
    if (fd < 0) {
      // A symlink in the middle fails O_DIRECTORY with ENOTDIR: say ELOOP,
      // as RESOLVE_NO_SYMLINKS would.
      struct stat st;
      if (!last && errno == ENOTDIR &&
          fstatat(at, std::string(parts[i]).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        errno = ELOOP;
      return -1;
    }
    dir.reset(fd);
    at = fd;
  }
  return dir.release();
}

// An O_PATH descriptor for `relative` beneath `root_fd`; the trailing
// component is not followed (a symlink comes back as itself).
int OpenPathBeneath(int root_fd, const std::string& relative) {
  int fd = OpenAt2(root_fd, relative, O_PATH | O_NOFOLLOW | O_CLOEXEC,
                   kBeneathNoSymlinks);
  if (fd < 0 && (errno == ENOSYS || errno == E2BIG)) fd = WalkNoFollow(root_fd, relative);
  return fd;
}

EntryKind KindOfError(int error) {
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return EntryKind::kMissing;
    case EACCES:
    case EPERM:
      return EntryKind::kDenied;
    case ELOOP:
    case EXDEV:
      return EntryKind::kSymlinkInPath;
    default:
      return EntryKind::kError;
  }
}

OpenedEntry Classify(int path_fd) {
  OpenedEntry entry;
  UniqueFd owned(path_fd);
  if (fstat(path_fd, &entry.st) != 0) {
    entry.error = errno;
    entry.kind = KindOfError(entry.error);
    return entry;
  }
  if (S_ISLNK(entry.st.st_mode)) entry.kind = EntryKind::kSymlink;
  else if (!S_ISREG(entry.st.st_mode)) entry.kind = EntryKind::kNotRegular;
  else entry.kind = EntryKind::kRegular;
  entry.fd = std::move(owned);
  return entry;
}

// Turns the O_PATH descriptor of a regular file into a readable one for the
// very same inode: through /proc/self/fd (no path is resolved again, so no
// swap can intervene), or, without /proc, by name again with a check that
// the inode did not change.
void Reopen(OpenedEntry* entry, int root_fd, const std::string& relative, bool beneath) {
  const std::string magic = "/proc/self/fd/" + std::to_string(entry->fd.get());
  int fd = open(magic.c_str(), kReadFlags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(magic.c_str(), kReadFlags);
  if (fd < 0 && errno == ENOENT) {
    if (beneath) {
      fd = OpenAt2(root_fd, relative, kReadFlags | O_NOFOLLOW,
                   kBeneathNoSymlinks);
    } else {
      fd = open(relative.c_str(), kReadFlags);
    }
  }
  if (fd < 0) {
    entry->error = errno;
    entry->kind = KindOfError(entry->error);
    entry->fd.reset();
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_dev != entry->st.st_dev || st.st_ino != entry->st.st_ino ||
      !S_ISREG(st.st_mode)) {
    close(fd);
    entry->error = ESTALE;  // replaced between the two opens
    entry->kind = EntryKind::kMissing;
    entry->fd.reset();
    return;
  }
  entry->st = st;
  entry->fd.reset(fd);
}

// A file with several names may have been linked here by someone who cannot read it. The rule
// needs the directory that holds this name: opened beneath the root like the file, and checked
// to hold the very inode opened, so a directory swapped in between cannot stand in for it.
// When that cannot be established the contents are withheld: nothing is read on a guess.
void CheckHardLink(OpenedEntry* entry, int root_fd, const std::string& relative) {
  const std::size_t slash = relative.find_last_of('/');
  const std::string dir_name = slash == std::string::npos ? "" : relative.substr(0, slash);
  const std::string base = slash == std::string::npos ? relative : relative.substr(slash + 1);
  UniqueFd dir(OpenDirectoryBeneath(root_fd, dir_name));
  struct stat dir_st, named;
  std::string why;
  if (!dir.valid() || fstat(dir.get(), &dir_st) != 0) {
    why = std::string(
              "not read: a file with several names (a hard link) whose directory cannot be "
              "checked (") +
          std::strerror(errno) + "): its contents are withheld (docs/security.md)";
  } else if (fstatat(dir.get(), base.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0 ||
             named.st_dev != entry->st.st_dev || named.st_ino != entry->st.st_ino) {
    entry->error = ESTALE;  // replaced or moved since it was opened
    entry->kind = EntryKind::kMissing;
    entry->fd.reset();
    return;
  } else {
    why = WhyLinkWithheld(entry->st, entry->fd.get(), dir_st);
  }
  if (why.empty()) return;
  entry->kind = EntryKind::kWithheld;
  entry->withheld = std::move(why);
  entry->fd.reset();
}

}  // namespace

OpenedEntry ProbeBeneath(int root_fd, const std::string& relative) {
  int fd = OpenPathBeneath(root_fd, relative);
  if (fd < 0) {
    OpenedEntry entry;
    entry.error = errno;
    entry.kind = KindOfError(entry.error);
    return entry;
  }
  return Classify(fd);
}

OpenedEntry OpenBeneath(int root_fd, const std::string& relative) {
  OpenedEntry entry = ProbeBeneath(root_fd, relative);
  if (entry.kind == EntryKind::kRegular) Reopen(&entry, root_fd, relative, true);
  else entry.fd.reset();
  if (entry.kind == EntryKind::kRegular && entry.st.st_nlink > 1)
    CheckHardLink(&entry, root_fd, relative);
  return entry;
}

int OpenDirectoryBeneath(int root_fd, const std::string& relative) {
  if (relative.empty()) return openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int fd = OpenAt2(root_fd, relative, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                   kBeneathNoSymlinks);
  if (fd >= 0 || (errno != ENOSYS && errno != E2BIG)) return fd;
  UniqueFd path_fd(WalkNoFollow(root_fd, relative));
  if (!path_fd.valid()) return -1;
  return openat(path_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

OpenedEntry OpenRegularFile(const std::string& path) {
  int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) {
    OpenedEntry entry;
    entry.error = errno;
    entry.kind = entry.error == ELOOP ? EntryKind::kError : KindOfError(entry.error);
    return entry;
  }
  OpenedEntry entry = Classify(fd);
  if (entry.kind == EntryKind::kRegular) Reopen(&entry, AT_FDCWD, path, false);
  else entry.fd.reset();
  return entry;
}

LinkTarget ResolveLink(int root_fd, const std::string& relative, std::string* text) {
  char buffer[4096];
  ssize_t n = readlinkat(root_fd, relative.c_str(), buffer, sizeof buffer);
  text->assign(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
  int fd = OpenAt2(root_fd, relative, O_PATH | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
  if (fd >= 0) {
    close(fd);
    return LinkTarget::kInside;
  }
  // EXDEV: the resolution tried to leave the root, and stopped there, before
  // looking anything up outside it.
  if (errno == ENOENT || errno == ENOTDIR) return LinkTarget::kDangling;
  return LinkTarget::kOutside;
}

const char* FileTypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFIFO: return "FIFO";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "character device";
    case S_IFBLK: return "block device";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symlink";
    case S_IFREG: return "regular file";
    default: return "unknown file type";
  }
}

}  // namespace ckptwatch
