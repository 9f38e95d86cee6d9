#include "watch/scan_directory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>

#include "base/open_beneath.h"
#include "base/unique_fd.h"

namespace ckptwatch {
namespace {

std::string EntryPath(const std::string& dir, const char* name) {
  return !dir.empty() && dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace

bool ScanDirectory(int root_fd, const std::string& root_path, const std::string& start,
                   const ScanOptions& options, Snapshot* out, std::string* err) {
  const std::string start_path = start.empty() ? root_path : EntryPath(root_path, start.c_str());
  UniqueFd top(OpenDirectoryBeneath(root_fd, start));
  if (!top.valid()) {
    *err = "cannot scan " + start_path + ": " + std::strerror(errno);
    return false;
  }
  // Each pending directory is opened relative to its parent's descriptor
  // with O_NOFOLLOW: a directory renamed or swapped for a symlink after it
  // was listed is skipped, never followed. A parent's descriptor lives as
  // long as a child of it is pending: one per level, not one per directory.
  struct Pending {
    std::shared_ptr<UniqueFd> parent;
    std::string name;
    std::string path;
  };
  std::vector<Pending> stack;
  auto scan_one = [&](int dfd, const std::string& dir_path) {
    int listing_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    DIR* dir = listing_fd < 0 ? nullptr : fdopendir(listing_fd);
    if (dir == nullptr) {
      if (listing_fd >= 0) close(listing_fd);
      out->unreadable.push_back(dir_path + ": " + std::strerror(errno));
      return;
    }
    std::shared_ptr<UniqueFd> self;
    while (struct dirent* entry = readdir(dir)) {
      const char* name = entry->d_name;
      if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
      std::string path = EntryPath(dir_path, name);
      // On a network filesystem each stat is a round trip: let d_type and the
      // filter rule out what they can first. DT_UNKNOWN falls through.
      const unsigned char type = entry->d_type;
      if (type == DT_LNK || (type == DT_DIR && !options.recursive)) continue;
      if (type == DT_REG && options.filter && !options.filter(path)) continue;
      struct stat st;
      if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone since listed
      if (S_ISDIR(st.st_mode)) {
        if (!options.recursive) continue;
        if (!self) self = std::make_shared<UniqueFd>(fcntl(dfd, F_DUPFD_CLOEXEC, 0));
        stack.push_back({self, name, std::move(path)});
      } else if (S_ISREG(st.st_mode)) {
        if (type != DT_REG && options.filter && !options.filter(path)) continue;
        out->files[std::move(path)] = FileStat{
            static_cast<std::uint64_t>(st.st_size),
            static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
            static_cast<std::uint64_t>(st.st_ino)};
      }
    }
    closedir(dir);
  };
  scan_one(top.get(), start_path);
  top.reset();
  while (!stack.empty()) {
    Pending next = std::move(stack.back());
    stack.pop_back();
    UniqueFd dfd(openat(next.parent->get(), next.name.c_str(),
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    next.parent.reset();
    if (!dfd.valid()) {
      // Deleted or replaced by a symlink since it was listed: nothing to scan.
      if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
        out->unreadable.push_back(next.path + ": " + std::strerror(errno));
      continue;
    }
    scan_one(dfd.get(), next.path);
  }
  return true;
}

bool ScanDirectory(const std::string& root, const ScanOptions& options, Snapshot* out,
                   std::string* err) {
  UniqueFd fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    *err = "cannot scan " + root + ": " + std::strerror(errno);
    return false;
  }
  return ScanDirectory(fd.get(), root, "", options, out, err);
}

}  // namespace ckptwatch
