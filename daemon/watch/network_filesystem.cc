#include "watch/network_filesystem.h"

#include <sys/vfs.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace ckptwatch {
namespace {

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
