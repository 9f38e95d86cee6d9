#include "verify/sets/set_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ckptwatch {

std::optional<SetDir> SetDir::Open(const std::string& path, std::string* err) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    *err = "cannot open directory " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  return SetDir(UniqueFd(fd), path);
}

std::optional<SetDir> SetDir::OpenChild(const std::string& name) const {
  int fd = OpenDirectoryBeneath(fd_.get(), name);
  if (fd < 0) return std::nullopt;
  return SetDir(UniqueFd(fd), Join(name));
}

std::vector<std::string> SetDir::Subdirs(std::size_t cap) const {
  std::vector<std::string> names;
  int dfd = openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return names;
  DIR* dir = fdopendir(dfd);
  if (!dir) {
    close(dfd);
    return names;
  }
  while (dirent* e = readdir(dir)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {  // some filesystems do not fill d_type
      struct stat st;
      is_dir = fstatat(fd_.get(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    if (!is_dir) continue;
    if (names.size() >= cap) break;
    names.emplace_back(e->d_name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

std::string SetDir::Join(const std::string& relative) const {
  if (relative.empty()) return path_;
  if (!path_.empty() && path_.back() == '/') return path_ + relative;
  return path_ + "/" + relative;
}

std::vector<std::string> SetDir::List(const std::string& relative, std::size_t cap) const {
  std::vector<std::string> names;
  int dfd = OpenDirectoryBeneath(fd_.get(), relative);
  if (dfd < 0) return names;
  DIR* dir = fdopendir(dfd);
  if (!dir) {
    close(dfd);
    return names;
  }
  while (dirent* e = readdir(dir)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    if (names.size() >= cap) break;
    names.emplace_back(e->d_name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

MemberStat SetDir::Stat(const std::string& relative) const {
  MemberStat out;
  if (relative.empty()) {  // the directory itself
    struct stat st;
    if (fstat(fd_.get(), &st) != 0) return out;
    out.kind = EntryKind::kNotRegular;
    out.mtime_ns =
        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    out.is_dir = true;
    return out;
  }
  OpenedEntry entry = ProbeBeneath(fd_.get(), relative);
  out.kind = entry.kind;
  if (entry.kind == EntryKind::kRegular || entry.kind == EntryKind::kNotRegular ||
      entry.kind == EntryKind::kSymlink) {
    out.size = static_cast<std::uint64_t>(entry.st.st_size);
    out.mtime_ns = static_cast<std::int64_t>(entry.st.st_mtim.tv_sec) * 1'000'000'000 +
                   entry.st.st_mtim.tv_nsec;
    out.is_dir = S_ISDIR(entry.st.st_mode);
  }
  return out;
}

bool SetDir::ReadSmall(const std::string& relative, std::size_t cap, std::string* out,
                       std::string* err) const {
  OpenedEntry entry = Open(relative);
  if (entry.kind != EntryKind::kRegular) {
    *err = relative + (entry.kind == EntryKind::kMissing   ? " is missing"
                       : entry.kind == EntryKind::kSymlink ? " is a symlink (not followed)"
                                                           : " cannot be opened");
    return false;
  }
  if (static_cast<std::uint64_t>(entry.st.st_size) > cap) {
    *err = relative + " holds " + std::to_string(entry.st.st_size) + " bytes, more than the " +
           std::to_string(cap) + " read for it";
    return false;
  }
  out->assign(static_cast<std::size_t>(entry.st.st_size), '\0');
  std::size_t got = 0;
  while (got < out->size()) {
    const ssize_t r =
        pread(entry.fd.get(), out->data() + got, out->size() - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      *err = "cannot read " + relative + ": " + std::strerror(errno);
      return false;
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  out->resize(got);
  return true;
}

std::int64_t StepFromName(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.size() > prefix.size() + 18 ||
      name.compare(0, prefix.size(), prefix) != 0)
    return -1;
  std::int64_t step = 0;
  for (std::size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

bool Listed(const std::vector<std::string>& names, const std::string& name) {
  return std::binary_search(names.begin(), names.end(), name);
}

}  // namespace ckptwatch
