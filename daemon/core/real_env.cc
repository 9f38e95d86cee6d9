#include "core/real_env.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/open_beneath.h"
#include "core/access_check.h"
#include "core/filesystem_space.h"
#include "watch/network_filesystem.h"
#include "watch/watch_root.h"

namespace ckptwatch {

Env::Clock::time_point RealEnv::Now() const { return Clock::now(); }

double RealEnv::UnixNow() const {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t RealEnv::RealtimeNs() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool RealEnv::OpenRoot(const std::string& watch, const std::string& path, std::string* err, int* error) {
  UniqueFd fd;
  if (!OpenWatchRoot(path, &fd, err, error)) return false;
  roots_[watch] = std::make_shared<UniqueFd>(std::move(fd));
  return true;
}

void RealEnv::CloseRoot(const std::string& watch) { roots_.erase(watch); }

std::shared_ptr<UniqueFd> RealEnv::Root(const std::string& watch) const {
  auto it = roots_.find(watch);
  return it == roots_.end() ? nullptr : it->second;
}

bool RealEnv::RootDeleted(const std::string& watch) const {
  auto root = Root(watch);
  struct stat st;
  return root && fstat(root->get(), &st) == 0 && st.st_nlink == 0;
}

EntryInfo RealEnv::Probe(const std::string& watch, const std::string& relative) const {
  EntryInfo info;
  auto root = Root(watch);
  if (!root || relative.empty()) return info;
  OpenedEntry entry = ProbeBeneath(root->get(), relative);
  info.kind = entry.kind;
  if (entry.kind == EntryKind::kRegular || entry.kind == EntryKind::kNotRegular) {
    info.stat = FileStat{static_cast<std::uint64_t>(entry.st.st_size),
                         entry.st.st_mtim.tv_sec * 1000000000LL + entry.st.st_mtim.tv_nsec,
                         static_cast<std::uint64_t>(entry.st.st_ino)};
    info.mode = entry.st.st_mode;
  }
  return info;
}

LinkTarget RealEnv::ResolveSymlink(const std::string& watch, const std::string& relative,
                                   std::string* text) const {
  auto root = Root(watch);
  if (!root) return LinkTarget::kOutside;
  return ResolveLink(root->get(), relative, text);
}

bool RealEnv::IsTrustedDirectory(const std::string& path) const { return ckptwatch::IsTrustedDirectory(path); }

bool RealEnv::IsNetworkFilesystem(const std::string& path, std::string* fs_name) const {
  return ckptwatch::IsNetworkFilesystem(path, fs_name);
}

OpenWriters RealEnv::WritersOf(const std::string& watch, const std::string& relative,
                               Clock::time_point since, std::string* who) const {
  auto root = Root(watch);
  if (!root || relative.empty()) return OpenWriters::kUnknown;
  // Opened read-only (O_NONBLOCK: a writer's lease cannot block the loop) for the
  // lease probe (open_writers.h), which asks about this one inode.
  OpenedEntry entry = OpenBeneath(root->get(), relative);
  if (entry.kind != EntryKind::kRegular) return OpenWriters::kNone;
  return writers_.Query(entry.fd.get(), entry.st, since, who);
}

bool RealEnv::StatSpace(const std::string& path, FsSpace* out) const { return ckptwatch::StatSpace(path, out); }

bool RealEnv::SpaceForFile(const std::string& watch, const std::string& relative, FsSpace* out) const {
  auto root = Root(watch);
  if (!root || relative.empty()) return false;
  OpenedEntry entry = ProbeBeneath(root->get(), relative);
  // The directory holding the file, opened beneath the root like the file.
  const std::size_t slash = relative.rfind('/');
  UniqueFd dir(slash == std::string::npos ? dup(root->get())
                                          : OpenDirectoryBeneath(root->get(), relative.substr(0, slash)));
  if (!dir.valid()) return false;
  struct statvfs fs;
  if (fstatvfs(dir.get(), &fs) != 0) return false;
  out->avail = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  out->size = static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize;
  out->quota.clear();
  if (entry.kind == EntryKind::kRegular) ApplyOwnerQuota(dir.get(), entry.st.st_uid, out);
  return true;
}

std::string RealEnv::WhyCannotRead(const std::string& path, const Principal& reader) const {
  return ckptwatch::WhyCannotRead(path, reader);
}

std::string RealEnv::WhyCannotCreateIn(const std::string& dir, const Principal& writer) const {
  return ckptwatch::WhyCannotCreateIn(dir, writer);
}

}  // namespace ckptwatch
