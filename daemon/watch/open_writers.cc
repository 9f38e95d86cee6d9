#include "open_writers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace ckptwatch {
namespace {

// A walk of a machine with more descriptors than this stops there: a bound on
// the time the loop spends, at the price of a possible miss.
constexpr std::size_t kMaxDescriptors = 1'000'000;

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

OpenWriters OpenWriterIndex::Query(dev_t dev, ino_t ino, Clock::time_point not_before, std::string* who) {
  const Clock::time_point now = Clock::now();
  if (!valid_ || now - taken_ > max_age_ || taken_ < not_before) Refresh(now);
  auto it = writers_.find({dev, ino});
  if (it != writers_.end()) {
    *who = it->second;
    return OpenWriters::kSome;
  }
  return visible_ ? OpenWriters::kNone : OpenWriters::kUnknown;
}

void OpenWriterIndex::Refresh(Clock::time_point now) {
  taken_ = now;
  valid_ = true;
  writers_.clear();
  int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (proc < 0) {
    visible_ = false;
    return;
  }
  // pid 1 belongs to root: if its descriptors are hidden, so are the trainer's.
  int init_fds = openat(proc, "1/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  visible_ = init_fds >= 0;
  if (init_fds >= 0) close(init_fds);
  DIR* pids = fdopendir(dup(proc));
  const std::string self = std::to_string(getpid());
  std::size_t seen = 0;
  while (pids && seen < kMaxDescriptors) {
    struct dirent* p = readdir(pids);
    if (!p) break;
    if (!IsNumber(p->d_name) || self == p->d_name) continue;
    const std::string pid = p->d_name;
    int fd_dir = openat(proc, (pid + "/fd").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_dir < 0) continue;  // exited, or a kernel thread
    DIR* fds = fdopendir(fd_dir);
    if (!fds) {
      close(fd_dir);
      continue;
    }
    while (struct dirent* f = readdir(fds)) {
      if (!IsNumber(f->d_name) || ++seen > kMaxDescriptors) continue;
      struct stat st;
      // Follows the magic link to the open file itself, wherever it lives.
      if (fstatat(dirfd(fds), f->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
      const int mode = AccessMode(ReadSmall(proc, pid + "/fdinfo/" + f->d_name));
      if (mode != O_WRONLY && mode != O_RDWR) continue;
      auto key = std::make_pair(st.st_dev, st.st_ino);
      if (writers_.count(key)) continue;
      std::string comm = ReadSmall(proc, pid + "/comm");
      while (!comm.empty() && (comm.back() == '\n' || comm.back() == ' ')) comm.pop_back();
      writers_[key] = "pid " + pid + (comm.empty() ? "" : " (" + comm + ")");
    }
    closedir(fds);
  }
  if (pids) closedir(pids);
  close(proc);
}

}  // namespace ckptwatch
