#include "base/open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "base/link_disclosure.h"

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

// True when `name` in `dir_fd` is a symlink (not followed).
bool IsSymlinkAt(int dir_fd, const std::string& name) {
  struct stat st;
  return fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

bool NoOpenat2(int error) { return error == ENOSYS || error == E2BIG; }

// Without openat2 (kernels before 5.6, seccomp profiles that answer ENOSYS):
// the same open one component at a time. Each directory on the way is opened
// O_PATH|O_NOFOLLOW|O_DIRECTORY relative to the descriptor of the one before,
// so a symlink anywhere on the way fails there, and ".." is refused outright
// (EXDEV) rather than resolved: no name above the root is ever looked up.
// The last component is opened with `flags` and O_NOFOLLOW, as openat2 would.
int OpenWalkingNoFollow(int root_fd, const std::string& relative, int flags) {
  std::vector<std::string_view> parts = Components(relative);
  if (parts.empty()) {
    if (relative.empty()) {
      errno = ENOENT;  // as openat2 answers for ""
      return -1;
    }
    return openat(root_fd, ".", flags);
  }
  UniqueFd dir;
  int at = root_fd;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "..") {
      errno = EXDEV;
      return -1;
    }
    const bool last = i + 1 == parts.size();
    const std::string name(parts[i]);
    int fd = openat(at, name.c_str(),
                    last ? flags | O_NOFOLLOW : O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      // A symlink fails O_DIRECTORY with ENOTDIR: say ELOOP, as
      // RESOLVE_NO_SYMLINKS does, so that it is told apart from a missing name.
      if (errno == ENOTDIR && IsSymlinkAt(at, name)) errno = ELOOP;
      return -1;
    }
    if (last) return fd;
    dir.reset(fd);
    at = fd;
  }
  return -1;  // not reached: the last component returns
}

// Opens `relative` beneath `root_fd` with `flags`: no symlink followed in any
// component (the last one included: O_NOFOLLOW), nothing outside the root.
int OpenNoSymlinks(int root_fd, const std::string& relative, int flags) {
  int fd = OpenAt2(root_fd, relative, static_cast<std::uint64_t>(flags | O_NOFOLLOW),
                   kBeneathNoSymlinks);
  if (fd < 0 && NoOpenat2(errno)) fd = OpenWalkingNoFollow(root_fd, relative, flags);
  return fd;
}

// An O_PATH descriptor for `relative` beneath `root_fd`; the trailing
// component is not followed (a symlink comes back as itself).
int OpenPathBeneath(int root_fd, const std::string& relative) {
  return OpenNoSymlinks(root_fd, relative, O_PATH | O_CLOEXEC);
}

// Where `relative` leads beneath `root_fd` when symlinks are followed but
// never out of the root: 0 when it names an existing entry, else the errno
// openat2(RESOLVE_BENEATH) gives (EXDEV: it would leave; ENOENT/ENOTDIR: it
// names nothing; ELOOP: too many links). The fallback for ResolveLink():
// links are read and spliced into the rest of the path, and ".." goes back to
// the descriptor of the directory the walk came down from, never to a parent
// looked up by name — so no directory above the root is ever held.
int ResolveWalking(int root_fd, const std::string& relative) {
  constexpr int kMaxLinks = 40;           // the kernel's MAXSYMLINKS
  constexpr std::size_t kMaxDepth = 256;  // directories held at once
  std::vector<std::string> todo;          // the components still to walk, last first
  auto push_front = [&todo](const std::string& path) {
    std::vector<std::string_view> parts = Components(path);
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.emplace_back(*it);
  };
  push_front(relative);
  if (todo.empty()) return ENOENT;
  std::vector<UniqueFd> down;  // the directories entered below the root
  int links = 0;
  while (!todo.empty()) {
    const std::string name = std::move(todo.back());
    todo.pop_back();
    if (name == "..") {
      if (down.empty()) return EXDEV;
      down.pop_back();
      continue;
    }
    const int at = down.empty() ? root_fd : down.back().get();
    UniqueFd fd(openat(at, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    if (!fd.valid() || fstat(fd.get(), &st) != 0) return errno;
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxLinks) return ELOOP;
      char target[4096];
      ssize_t n = readlinkat(fd.get(), "", target, sizeof target);
      if (n <= 0 || static_cast<std::size_t>(n) == sizeof target) return n < 0 ? errno : ENOENT;
      // RESOLVE_BENEATH refuses an absolute link: it would start over at "/".
      if (target[0] == '/') return EXDEV;
      push_front(std::string(target, static_cast<std::size_t>(n)));
      continue;
    }
    if (todo.empty()) return 0;
    if (!S_ISDIR(st.st_mode)) return ENOTDIR;
    if (down.size() >= kMaxDepth) return ELOOP;
    down.push_back(std::move(fd));
  }
  return 0;  // the path ended with "..": a directory inside the root
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
      fd = OpenNoSymlinks(root_fd, relative, kReadFlags);
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
  return OpenNoSymlinks(root_fd, relative, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
  text->clear();
  // The link's own text, read through its O_PATH descriptor: the directories
  // on the way to it are not followed either.
  UniqueFd link(OpenPathBeneath(root_fd, relative));
  char buffer[4096];
  ssize_t n = link.valid() ? readlinkat(link.get(), "", buffer, sizeof buffer) : -1;
  if (n > 0) text->assign(buffer, static_cast<std::size_t>(n));
  int fd = OpenAt2(root_fd, relative, O_PATH | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
  int error = errno;
  if (fd >= 0) {
    close(fd);
    error = 0;
  } else if (NoOpenat2(error)) {
    error = ResolveWalking(root_fd, relative);
  }
  if (error == 0) return LinkTarget::kInside;
  // EXDEV: the resolution tried to leave the root, and stopped there, before
  // looking anything up outside it.
  if (error == ENOENT || error == ENOTDIR) return LinkTarget::kDangling;
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
