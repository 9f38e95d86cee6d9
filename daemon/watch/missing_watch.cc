#include "watch/missing_watch.h"

#include <sys/stat.h>

#include <filesystem>
#include <system_error>

#include "watch/watch_root.h"

namespace ckptwatch {
namespace {

// Absolute and lexically normal, without a trailing slash, so that paths
// from watch events compare equal to the ones computed here.
std::string Normalize(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  std::string normal = (ec ? std::filesystem::path(path) : absolute).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

// A directory the daemon would watch: a symlink on the way counts only when
// root owns it (watch_root.h), so a user's symlink where the root will
// appear does not end the wait.
bool IsDirectory(const std::string& path) { return IsTrustedDirectory(path); }

// True when `path` is `dir` or below it.
bool IsWithin(const std::string& path, const std::string& dir) {
  if (path == dir) return true;
  if (dir == "/") return path.size() > 1 && path[0] == '/';
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

}  // namespace

std::string NearestExistingAncestor(const std::string& path) {
  return NearestExistingAncestor(path, IsDirectory);
}

std::string NearestExistingAncestor(const std::string& path, const DirectoryTest& is_directory) {
  std::filesystem::path candidate = Normalize(path);
  // Any error (ENOENT, ENOTDIR from a file in the way, EACCES) means "not
  // here yet"; "/" always exists and ends the walk.
  while (candidate.has_relative_path() && !is_directory(candidate.string())) {
    candidate = candidate.parent_path();
  }
  return candidate.string();
}

MissingWatch::MissingWatch(const std::string& root) : MissingWatch(root, IsDirectory) {}

MissingWatch::MissingWatch(const std::string& root, DirectoryTest is_directory)
    : is_directory_(std::move(is_directory)),
      root_(Normalize(root)),
      ancestor_(NearestExistingAncestor(root_, is_directory_)) {}

MissingWatch::Step MissingWatch::OnEntry(const std::string& path) {
  const std::string entry = Normalize(path);
  // Only an entry below the watched ancestor and on the way to the root
  // matters; siblings (other runs, stray files) are noise.
  if (entry == ancestor_ || !IsWithin(entry, ancestor_) || !IsWithin(root_, entry)) {
    return Step::kWait;
  }
  return Refresh();
}

MissingWatch::Step MissingWatch::Refresh() {
  // Look from the root down rather than one level below the ancestor: `mkdir
  // -p` creates several levels before the daemon sees the first event.
  std::string nearest = NearestExistingAncestor(root_, is_directory_);
  if (nearest == root_) {
    ancestor_ = std::move(nearest);
    return Step::kExists;
  }
  if (nearest == ancestor_) return Step::kWait;
  ancestor_ = std::move(nearest);
  return Step::kMoveWatch;
}

}  // namespace ckptwatch
