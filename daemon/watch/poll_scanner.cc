#include "watch/poll_scanner.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
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

std::string Join(const std::string& dir, const char* name) {
  return !dir.empty() && dir.back() == '/' ? dir + name : dir + "/" + name;
}

struct FsType {
  std::int64_t magic;
  const char* name;
  bool network;
};

// statfs(2) f_type values (linux/magic.h and the out-of-tree filesystems'
// own headers). "Network" means inotify cannot see writes made through
// another client; FUSE counts as network because the FUSE mounts that hold
// checkpoints (gcsfuse, s3fs, blobfuse2, JuiceFS, GlusterFS, sshfs) are shared
// ones, and polling a local one only costs a stat per file per interval.
constexpr FsType kFsTypes[] = {
    {0x6969, "nfs", true},           {0x0BD00BD0, "lustre", true},
    {0x47504653, "gpfs", true},      {0x00C36400, "ceph", true},
    {0xFF534D42, "cifs", true},      {0xFE534D42, "smb2", true},
    {0x517B, "smb", true},           {0x65735546, "fuse", true},
    {0x01021997, "9p", true},        {0x5346414F, "afs", true},
    {0x6B414653, "afs", true},       {0x73757245, "coda", true},
    {0x564C, "ncp", true},           {0x7461636F, "ocfs2", true},
    {0x01161970, "gfs2", true},      {0x19830326, "beegfs", true},
    {0x20030528, "orangefs", true},  {0xEF53, "ext4", false},
    {0x58465342, "xfs", false},      {0x9123683E, "btrfs", false},
    {0x2FC12FC1, "zfs", false},      {0x01021994, "tmpfs", false},
    {0x858458F6, "ramfs", false},    {0x794C7630, "overlayfs", false},
    {0xF2F52010, "f2fs", false},     {0xCA451A4E, "bcachefs", false},
    {0x2011BAB0, "exfat", false},    {0x4D44, "vfat", false},
    {0x52654973, "reiserfs", false}, {0x3153464A, "jfs", false},
    {0x73717368, "squashfs", false},
};

}  // namespace

bool ScanDirectory(int root_fd, const std::string& root_path, const std::string& start,
                   const ScanOptions& options, Snapshot* out, std::string* err) {
  const std::string start_path = start.empty() ? root_path : Join(root_path, start.c_str());
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
      std::string path = Join(dir_path, name);
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

std::vector<std::string> DiffSnapshots(const Snapshot& before, const Snapshot& after) {
  std::vector<std::string> changed;
  for (const auto& [path, stat] : after.files) {
    auto it = before.files.find(path);
    if (it == before.files.end() || it->second != stat) changed.push_back(path);
  }
  return changed;
}

void PollScanner::Baseline(const Snapshot& snapshot) {
  tracked_.clear();
  for (const auto& [path, stat] : snapshot.files) {
    tracked_[path] = Tracked{stat, Clock::time_point{}, settle_, /*reported=*/true};
  }
}

std::vector<std::string> PollScanner::Update(const Snapshot& snapshot, Clock::time_point now) {
  std::erase_if(tracked_, [&](const auto& item) { return !snapshot.files.count(item.first); });
  std::vector<std::string> settled;
  for (const auto& [path, stat] : snapshot.files) {
    auto [it, inserted] = tracked_.try_emplace(path);
    Tracked& tracked = it->second;
    if (inserted || tracked.stat != stat) tracked = Tracked{stat, now, settle_, false};
    // Measured between observations, not from a guess of when the write
    // happened: a file still growing between two scans is never reported.
    if (!tracked.reported && now - tracked.since >= tracked.settle) {
      tracked.reported = true;
      settled.push_back(path);
    }
  }
  return settled;
}

std::size_t PollScanner::unsettled_count() const {
  return std::count_if(tracked_.begin(), tracked_.end(),
                       [](const auto& item) { return !item.second.reported; });
}

bool IsNetworkFilesystemType(std::int64_t f_type, std::string* fs_name) {
  // f_type is a signed long on some ABIs; magics with the top bit set
  // (CIFS, SMB2) then come out negative.
  const std::int64_t magic = f_type & 0xFFFFFFFF;
  for (const FsType& type : kFsTypes) {
    if (type.magic == magic) {
      *fs_name = type.name;
      return type.network;
    }
  }
  char hex[16];
  std::snprintf(hex, sizeof(hex), "0x%llx", static_cast<unsigned long long>(magic));
  *fs_name = hex;
  return false;
}

bool IsNetworkFilesystem(const std::string& path, std::string* fs_name) {
  struct statfs fs;
  if (statfs(path.c_str(), &fs) != 0) {
    *fs_name = std::string("unknown (statfs: ") + std::strerror(errno) + ")";
    return false;
  }
  return IsNetworkFilesystemType(static_cast<std::int64_t>(fs.f_type), fs_name);
}

}  // namespace ckptwatch
