#include "watch/watch_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

namespace ckptwatch {
namespace {

// As the kernel's own limit on symlinks in one resolution.
constexpr int kMaxSymlinks = 40;

void PushComponents(const std::string& path, std::deque<std::string>* out) {
  std::deque<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(start, slash - start);
    if (!part.empty() && part != ".") parts.push_back(std::move(part));
    start = slash + 1;
  }
  out->insert(out->begin(), parts.begin(), parts.end());
}

bool FailWith(std::string* err, int* error, int code, std::string text) {
  *err = std::move(text);
  *error = code;
  return false;
}

}  // namespace

bool OpenWatchRoot(const std::string& path, UniqueFd* fd, std::string* err, int* error) {
  if (path.empty() || path[0] != '/')
    return FailWith(err, error, EINVAL, path + " is not an absolute path");
  UniqueFd dir(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid())
    return FailWith(err, error, errno, std::string("cannot open /: ") + std::strerror(errno));
  std::deque<std::string> todo;
  PushComponents(path, &todo);
  std::string walked;  // the path so far, for messages
  int links = 0;
  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    if (name == "..") {
      // ".." of what was actually reached, not a lexical step back.
      dir.reset(openat(dir.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!dir.valid()) return FailWith(err, error, errno, walked + "/..: " + std::strerror(errno));
      walked += "/..";
      continue;
    }
    const std::string here = walked + "/" + name;
    UniqueFd next(openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) return FailWith(err, error, errno, here + ": " + std::strerror(errno));
    struct stat st;
    if (fstat(next.get(), &st) != 0)
      return FailWith(err, error, errno, here + ": " + std::strerror(errno));
    if (S_ISLNK(st.st_mode)) {
      if (st.st_uid != 0)
        return FailWith(err, error, ELOOP,
                        here + " is a symlink owned by uid " + std::to_string(st.st_uid) +
                            ", not root: not followed (a watch path may pass only through symlinks "
                            "an administrator made)");
      if (++links > kMaxSymlinks) return FailWith(err, error, ELOOP, path + ": too many symlinks");
      char target[4096];
      ssize_t n = readlinkat(dir.get(), name.c_str(), target, sizeof target - 1);
      if (n <= 0)
        return FailWith(err, error, n < 0 ? errno : ENOENT, here + ": unreadable symlink");
      std::string text(target, static_cast<std::size_t>(n));
      if (text[0] == '/') {
        dir.reset(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        walked.clear();
      }
      PushComponents(text, &todo);
      continue;
    }
    if (!S_ISDIR(st.st_mode))
      return FailWith(
          err, error, ENOTDIR,
          here + " is a " + (S_ISREG(st.st_mode) ? "file" : "special file") + ", not a directory");
    dir = std::move(next);
    walked = here;
  }
  int readable = openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (readable < 0) return FailWith(err, error, errno, path + ": " + std::strerror(errno));
  fd->reset(readable);
  return true;
}

bool IsTrustedDirectory(const std::string& path) {
  UniqueFd fd;
  std::string err;
  int error = 0;
  return OpenWatchRoot(path, &fd, &err, &error);
}

}  // namespace ckptwatch
