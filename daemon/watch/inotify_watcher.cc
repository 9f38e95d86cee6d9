#include "watch/inotify_watcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <utility>

namespace ckptwatch {
namespace {

bool IsRegularFile(const std::string& path) {
  struct stat st;
  // Gone already: nothing to report either way.
  return lstat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode);
}

// A checkpoint is only worth a look once its writer closes it or renames it
// into place; IN_CREATE and IN_MODIFY of a regular file say only that a save
// is under way (kFileWriting), so that one whose writer hangs with the file
// open is still looked at (stuck_after). The kernel merges a run of IN_MODIFY
// of one file into one queued event. IN_EXCL_UNLINK keeps a file
// that was deleted while still open from reporting its final close.
// IN_DELETE and IN_MOVED_FROM let the daemon forget a name's state when it goes.
constexpr std::uint32_t kDirMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY |
                                   IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB | IN_ONLYDIR |
                                   IN_EXCL_UNLINK | IN_DELETE | IN_MOVED_FROM;

std::string ChildPath(const std::string& dir, const char* name) {
  return dir == "/" ? dir + name : dir + "/" + name;
}

// True when `path` is `dir` or below it.
bool IsUnder(const std::string& path, const std::string& dir) {
  if (path == dir) return true;
  if (dir == "/") return path.size() > 1 && path[0] == '/';
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

// Trailing slashes would make event paths "root//file".
std::string TrimSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

// A directory that vanished or was replaced between listing and watching
// raced with its deletion: nothing to watch, and nothing to report.
bool Vanished(int error) { return error == ENOENT || error == ENOTDIR || error == ELOOP; }

WatchError MakeError(const std::string& path, int error) {
  WatchError err;
  err.error = error;
  if (error == ENOSPC) {
    err.message = FormatWatchLimitError(path, ReadInotifySysctl("max_user_watches"));
  } else {
    err.message = "cannot watch " + path + ": " + std::strerror(error);
  }
  return err;
}

}  // namespace

std::unique_ptr<InotifyWatcher> InotifyWatcher::Create(WatchError* err) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    err->error = errno;
    err->message = std::string("cannot create an inotify instance: ") + std::strerror(errno);
    if (errno == EMFILE) {
      err->message += " (fs.inotify.max_user_instances = " +
                      std::to_string(ReadInotifySysctl("max_user_instances")) +
                      " or the open file limit reached); raise it, or set `backend: poll`";
    }
    return nullptr;
  }
  return std::unique_ptr<InotifyWatcher>(new InotifyWatcher(fd));
}

InotifyWatcher::InotifyWatcher(int fd) : fd_(fd) {}

InotifyWatcher::~InotifyWatcher() { close(fd_); }

int InotifyWatcher::AddWatch(const std::string& root, bool recursive, WatchError* err) {
  const int watch_id = next_watch_id_++;
  const std::string path = TrimSlashes(root);
  roots_[watch_id] = Root{path, recursive};
  if (!WatchTree(watch_id, path, /*is_root=*/true, err)) {
    // Half a tree would miss writes without saying so; all or nothing.
    RemoveWatch(watch_id);
    return -1;
  }
  return watch_id;
}

void InotifyWatcher::RemoveWatch(int watch_id) {
  DropWatchId(watch_id);
  roots_.erase(watch_id);
}

void InotifyWatcher::DropWatchId(int watch_id) {
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    std::vector<int>& ids = it->second.watch_ids;
    ids.erase(std::remove(ids.begin(), ids.end(), watch_id), ids.end());
    if (ids.empty()) {
      // The IN_IGNORED this queues finds no entry and is dropped.
      inotify_rm_watch(fd_, it->first);
      it = dirs_.erase(it);
    } else {
      ++it;
    }
  }
}

void InotifyWatcher::ForgetSubtree(const std::string& path) {
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    if (IsUnder(it->second.path, path)) {
      inotify_rm_watch(fd_, it->first);
      it = dirs_.erase(it);
    } else {
      ++it;
    }
  }
}

int InotifyWatcher::WatchDirectory(int watch_id, const std::string& path, bool is_root,
                                   WatchError* err) {
  // Below the root a symlink is never followed: IN_DONT_FOLLOW with
  // IN_ONLYDIR fails on a link even if it was swapped in after listing.
  const std::uint32_t mask = kDirMask | (is_root ? 0 : IN_DONT_FOLLOW);
  int wd = inotify_add_watch(fd_, path.c_str(), mask);
  if (wd < 0) {
    *err = MakeError(path, errno);
    return -1;
  }
  struct stat st;
  int rc = is_root ? stat(path.c_str(), &st) : lstat(path.c_str(), &st);
  Dir& dir = dirs_[wd];
  if (dir.path != path) {
    // A known descriptor under a new path is a directory that was renamed:
    // it now belongs to the watches of its new place only.
    dir.path = path;
    dir.watch_ids.clear();
    dir.is_root = false;
  }
  dir.is_root = dir.is_root || is_root;
  if (rc == 0) {
    dir.dev = st.st_dev;
    dir.ino = st.st_ino;
  }
  if (std::find(dir.watch_ids.begin(), dir.watch_ids.end(), watch_id) == dir.watch_ids.end()) {
    dir.watch_ids.push_back(watch_id);
  }
  return wd;
}

bool InotifyWatcher::WatchTree(int watch_id, const std::string& top, bool is_root,
                               WatchError* err) {
  if (WatchDirectory(watch_id, top, is_root, err) < 0) return false;
  auto root = roots_.find(watch_id);
  if (root == roots_.end() || !root->second.recursive) return true;
  // Watch each directory before listing it, so one created in between is
  // either listed here or reported by its parent's watch.
  std::vector<std::string> stack = {top};
  while (!stack.empty()) {
    std::string dir_path = std::move(stack.back());
    stack.pop_back();
    int dfd = open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC |
                                         (dir_path == top && is_root ? 0 : O_NOFOLLOW));
    if (dfd < 0) {
      if (Vanished(errno)) continue;
      *err = MakeError(dir_path, errno);
      return false;
    }
    DIR* dir = fdopendir(dfd);
    if (dir == nullptr) {
      *err = MakeError(dir_path, errno);
      close(dfd);
      return false;
    }
    while (struct dirent* entry = readdir(dir)) {
      const char* name = entry->d_name;
      if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
      if (entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN) continue;
      struct stat st;
      if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
      std::string child = ChildPath(dir_path, name);
      WatchError child_err;
      if (WatchDirectory(watch_id, child, /*is_root=*/false, &child_err) < 0) {
        if (Vanished(child_err.error)) continue;
        *err = std::move(child_err);
        closedir(dir);
        return false;
      }
      stack.push_back(std::move(child));
    }
    closedir(dir);
  }
  return true;
}

bool InotifyWatcher::StillAt(const Dir& dir) {
  struct stat st;
  int rc = dir.is_root ? stat(dir.path.c_str(), &st) : lstat(dir.path.c_str(), &st);
  return rc == 0 && st.st_dev == dir.dev && st.st_ino == dir.ino;
}

void InotifyWatcher::Resync(const std::string& reason, std::vector<WatchEvent>* out) {
  // The lost events may include the IN_CREATE of a new directory (never
  // watched) and the IN_IGNORED of a deleted one (a stale entry).
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    if (StillAt(it->second)) {
      ++it;
    } else {
      inotify_rm_watch(fd_, it->first);
      it = dirs_.erase(it);
    }
  }
  for (const auto& [id, root] : roots_) {
    WatchError err;
    if (WatchTree(id, root.path, /*is_root=*/true, &err)) {
      out->push_back({WatchEvent::Kind::kOverflow, id, root.path, reason, ""});
    } else if (Vanished(err.error)) {
      out->push_back({WatchEvent::Kind::kDirectoryGone, id, root.path, "", ""});
    } else {
      out->push_back({WatchEvent::Kind::kWatchFailed, id, root.path, err.message, ""});
    }
  }
}

void InotifyWatcher::ReadEvents(std::vector<WatchEvent>* out) {
  alignas(struct inotify_event) char buffer[64 * 1024];
  moves_.clear();
  for (;;) {
    ssize_t n = read(fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      // Cannot happen with a buffer this size; if it does, events may be lost.
      std::string reason = std::string("reading inotify events failed: ") +
                           (n < 0 ? std::strerror(errno) : "end of file") + "; rescan";
      for (const auto& [id, root] : roots_) {
        out->push_back({WatchEvent::Kind::kOverflow, id, root.path, reason, ""});
      }
      return;
    }
    for (char* p = buffer; p < buffer + n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(p);
      Handle(*event, out);
      p += sizeof(struct inotify_event) + event->len;
    }
  }
}

void InotifyWatcher::Handle(const struct inotify_event& event, std::vector<WatchEvent>* out) {
  using Kind = WatchEvent::Kind;
  if (event.mask & IN_Q_OVERFLOW) {
    Resync("inotify event queue overflowed (fs.inotify.max_queued_events = " +
               std::to_string(ReadInotifySysctl("max_queued_events")) +
               "): events were lost; rescan",
           out);
    return;
  }
  auto it = dirs_.find(event.wd);
  // Events still queued for a watch we already dropped.
  if (it == dirs_.end()) return;
  const Dir& dir = it->second;
  const std::vector<int> ids = dir.watch_ids;
  auto emit = [&](Kind kind, const std::string& path) {
    for (int id : ids) out->push_back({kind, id, path, "", ""});
  };

  if (event.mask & (IN_DELETE_SELF | IN_IGNORED | IN_UNMOUNT)) {
    // IN_DELETE_SELF is followed by IN_IGNORED; erasing now reports it once.
    std::string path = dir.path;
    dirs_.erase(it);
    emit(Kind::kDirectoryGone, path);
    return;
  }
  if (event.mask & IN_MOVE_SELF) {
    if (StillAt(dir)) return;  // Renamed within the tree: its IN_MOVED_TO re-homed it.
    // Moved away: the descriptors below it would report under stale paths.
    std::string path = dir.path;
    ForgetSubtree(path);
    emit(Kind::kDirectoryGone, path);
    return;
  }

  const std::string path = event.len > 0 ? ChildPath(dir.path, event.name) : dir.path;
  // The second half of a rename whose first half this read saw: its name-gone
  // events say where the name went (a staging directory renamed into place).
  if ((event.mask & IN_MOVED_TO) && event.cookie != 0) {
    auto from = moves_.find(event.cookie);
    if (from != moves_.end()) {
      for (std::size_t i : from->second)
        if (std::find(ids.begin(), ids.end(), (*out)[i].watch_id) != ids.end())
          (*out)[i].moved_to = path;
      moves_.erase(from);
    }
  }
  if ((event.mask & IN_ISDIR) && (event.mask & (IN_CREATE | IN_MOVED_TO))) {
    for (int id : ids) {
      auto root = roots_.find(id);
      if (root == roots_.end() || !root->second.recursive) continue;
      WatchError err;
      if (!WatchTree(id, path, /*is_root=*/false, &err) && !Vanished(err.error)) {
        out->push_back({Kind::kWatchFailed, id, path, err.message, ""});
      }
    }
    emit(Kind::kDirectoryCreated, path);
  } else if (event.mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
    emit(Kind::kFileWritten, path);
  } else if ((event.mask & IN_CREATE) && !(event.mask & IN_ISDIR) && !IsRegularFile(path)) {
    // A regular file is worth a look once written; a symlink, FIFO, socket or
    // device named like a checkpoint is complete when it appears, and gets
    // its verdict (or its symlink line) now, not never.
    emit(Kind::kFileWritten, path);
  } else if ((event.mask & (IN_CREATE | IN_MODIFY)) && !(event.mask & IN_ISDIR)) {
    emit(Kind::kFileWriting, path);
  } else if (event.mask & IN_ATTRIB) {
    emit(Kind::kAttributesChanged, path);
  } else if (event.mask & (IN_DELETE | IN_MOVED_FROM)) {
    const std::size_t first = out->size();
    emit(Kind::kNameGone, path);
    if ((event.mask & IN_MOVED_FROM) && event.cookie != 0)
      for (std::size_t i = first; i < out->size(); ++i) moves_[event.cookie].push_back(i);
  }
}

long SuggestedMaxUserWatches(long current) {
  // 524288 is the value commonly recommended for IDEs and build tools and is
  // far from the kernel's memory cost (about 1 KiB per watch).
  constexpr long kFloor = 524288;
  return current > kFloor / 2 ? current * 2 : kFloor;
}

std::string FormatWatchLimitError(const std::string& path, long current) {
  const std::string value = current >= 0 ? std::to_string(current) : "unknown";
  const std::string suggested = std::to_string(SuggestedMaxUserWatches(current));
  return "cannot watch " + path +
         ": inotify watch limit reached (fs.inotify.max_user_watches = " + value +
         "); raise it, e.g. `sysctl -w fs.inotify.max_user_watches=" + suggested +
         "` and persist it in /etc/sysctl.d/, or set `backend: poll` for this watch";
}

long ReadInotifySysctl(const std::string& name) {
  std::ifstream in("/proc/sys/fs/inotify/" + name);
  long value = -1;
  if (!(in >> value)) return -1;
  return value;
}

}  // namespace ckptwatch
