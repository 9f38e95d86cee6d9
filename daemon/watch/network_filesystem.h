// Whether inotify can see every write to a directory: not on a filesystem other machines write
// to (NFS, Lustre, GPFS, CephFS, SMB, FUSE), where `backend: auto` polls instead.
#pragma once

#include <cstdint>
#include <string>

namespace ckptwatch {

/// True when `path` is on a filesystem where inotify cannot see other
/// clients' writes (`backend: auto` then polls). `*fs_name` gets a name for
/// the log ("nfs", "ext4", "0x1234abcd"); false if statfs() fails.
bool IsNetworkFilesystem(const std::string& path, std::string* fs_name);

/// IsNetworkFilesystem() for a statfs() f_type value.
bool IsNetworkFilesystemType(std::int64_t f_type, std::string* fs_name);

}  // namespace ckptwatch
