#include "watch/open_writers.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ckptwatch {
namespace {

bool IsNumber(const char* name) {
  if (!*name) return false;
  for (const char* p = name; *p; ++p)
    if (*p < '0' || *p > '9') return false;
  return true;
}

// Reads a small /proc file relative to `dir`; "" when it cannot.
std::string ReadSmall(int dir, const std::string& name) {
  int fd = openat(dir, name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buffer[512];
  ssize_t n = read(fd, buffer, sizeof buffer - 1);
  close(fd);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : "";
}

// The access mode from an fdinfo "flags:\t0100002" line; -1 when absent.
int AccessMode(const std::string& fdinfo) {
  std::size_t at = fdinfo.find("flags:");
  if (at == std::string::npos) return -1;
  const char* start = fdinfo.c_str() + at + 6;
  char* end = nullptr;
  long flags = std::strtol(start, &end, 8);
  if (end == start) return -1;
  return static_cast<int>(flags & O_ACCMODE);
}

}  // namespace

std::optional<OpenWriters> ProbeWritersByLease(int fd) {
  // No F_SETOWN on this descriptor: a writer opening the file while the lease
  // is held breaks it without any signal reaching the daemon.
  if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
    fcntl(fd, F_SETLEASE, F_UNLCK);
    return OpenWriters::kNone;
  }
  if (errno == EAGAIN) return OpenWriters::kSome;
  return std::nullopt;
}

OpenWriters OpenWriterIndex::Query(int fd, const struct stat& st, Clock::time_point not_before,
                                   std::string* who, Clock::time_point now) {
  if (std::optional<OpenWriters> lease = ProbeWritersByLease(fd)) {
    if (*lease == OpenWriters::kSome) *who = NameHolder(st, now);
    return *lease;
  }
  if (!valid_ || now - taken_ > max_age_ || taken_ < not_before) {
    snapshot_ = WalkProc(std::nullopt, std::nullopt);
    taken_ = now;
    valid_ = true;
  }
  auto it = snapshot_.writers.find({st.st_dev, st.st_ino});
  if (it != snapshot_.writers.end()) {
    *who = it->second;
    return OpenWriters::kSome;
  }
  return snapshot_.visible && snapshot_.complete ? OpenWriters::kNone : OpenWriters::kUnknown;
}

std::string OpenWriterIndex::NameHolder(const struct stat& st, Clock::time_point now) {
  if (now - name_window_ >= std::chrono::seconds(1)) {
    name_window_ = now;
    names_in_window_ = 0;
  }
  if (names_in_window_ >= kNamesPerSecond) return "a process";
  ++names_in_window_;
  // The writer is most often the file's owner: only its processes are looked at.
  const Walk walk = WalkProc(st.st_uid, std::make_pair(st.st_dev, st.st_ino));
  auto it = walk.writers.find({st.st_dev, st.st_ino});
  return it != walk.writers.end() ? it->second : "a process";
}

OpenWriterIndex::Walk OpenWriterIndex::WalkProc(std::optional<uid_t> only_uid,
                                                std::optional<std::pair<dev_t, ino_t>> stop_at) {
  Walk walk;
  int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc < 0) return walk;
  // pid 1 belongs to root: if its descriptors are hidden, so are the trainer's.
  int init_fds = openat(proc, "1/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  walk.visible = init_fds >= 0;
  if (init_fds >= 0) close(init_fds);
  walk.complete = true;
  DIR* pids = fdopendir(dup(proc));
  const std::string self = std::to_string(getpid());
  std::map<uid_t, std::size_t> seen_by_uid;  // the bound is charged to each uid alone
  while (pids) {
    struct dirent* p = readdir(pids);
    if (!p) break;
    if (!IsNumber(p->d_name) || self == p->d_name) continue;
    const std::string pid = p->d_name;
    struct stat owner;
    if (fstatat(proc, pid.c_str(), &owner, 0) != 0) continue;  // exited
    if (only_uid && owner.st_uid != *only_uid) continue;
    std::size_t& seen = seen_by_uid[owner.st_uid];
    if (seen >= kMaxDescriptorsPerUid) {
      walk.complete = false;
      continue;
    }
    int fd_dir = openat(proc, (pid + "/fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_dir < 0) continue;  // exited, or a kernel thread
    DIR* fds = fdopendir(fd_dir);
    if (!fds) {
      close(fd_dir);
      continue;
    }
    while (struct dirent* f = readdir(fds)) {
      if (!IsNumber(f->d_name)) continue;
      if (++seen > kMaxDescriptorsPerUid) {
        walk.complete = false;
        break;
      }
      struct stat st;
      // Follows the magic link to the open file itself, wherever it lives.
      if (fstatat(dirfd(fds), f->d_name, &st, 0) != 0) {
        // Listing another user's descriptors needs only CAP_DAC_READ_SEARCH,
        // following them ptrace rights: a process whose files cannot be seen
        // leaves the answer unknown, never "no writer".
        if (errno == EACCES || errno == EPERM) {
          walk.complete = false;
          break;
        }
        continue;
      }
      if (!S_ISREG(st.st_mode)) continue;
      auto key = std::make_pair(st.st_dev, st.st_ino);
      if (stop_at && key != *stop_at) continue;
      const int mode = AccessMode(ReadSmall(proc, pid + "/fdinfo/" + f->d_name));
      if (mode != O_WRONLY && mode != O_RDWR) continue;
      if (walk.writers.count(key)) continue;
      std::string comm = ReadSmall(proc, pid + "/comm");
      while (!comm.empty() && (comm.back() == '\n' || comm.back() == ' ')) comm.pop_back();
      walk.writers[key] = "pid " + pid + (comm.empty() ? "" : " (" + comm + ")");
      if (stop_at) break;
    }
    closedir(fds);
    if (stop_at && walk.writers.count(*stop_at)) break;
  }
  if (pids) closedir(pids);
  close(proc);
  return walk;
}

}  // namespace ckptwatch
