// The directory a checkpoint set lives in, opened once. Its members are opened beneath it
// (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS through OpenBeneath()): a name in a watched
// directory is hostile, and a member that is a symlink is not followed out of the set.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/open_beneath.h"
#include "base/unique_fd.h"

namespace ckptwatch {

/// What a member name is now, without opening it for reading.
struct MemberStat {
  EntryKind kind = EntryKind::kMissing;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  bool is_dir = false;
};

class SetDir {
 public:
  /// Opens the directory `path` (a symlink the caller named is followed, as open(2) would);
  /// nullopt with `*err` set when it is no directory or cannot be opened.
  static std::optional<SetDir> Open(const std::string& path, std::string* err);
  /// Takes `fd`, a directory opened by the caller, named `path` in messages.
  static SetDir Adopt(UniqueFd fd, std::string path) { return SetDir(std::move(fd), std::move(path)); }
  /// Opens the subdirectory `name` of this one, no symlink followed.
  std::optional<SetDir> OpenChild(const std::string& name) const;

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  /// `path()` joined with `relative`, for messages and reports.
  std::string Join(const std::string& relative) const;

  /// Names in the subdirectory `relative` ("" for this one), sorted, without "." and "..";
  /// at most `cap` of them. A subdirectory reached through a symlink is not listed.
  std::vector<std::string> List(const std::string& relative = "", std::size_t cap = 100000) const;
  /// The names of this directory's subdirectories (not symlinks to one), sorted, at most `cap`.
  std::vector<std::string> Subdirs(std::size_t cap = 100000) const;
  /// What `relative` is (no symlink followed); "" for this directory itself.
  MemberStat Stat(const std::string& relative) const;
  /// Opens the regular file `relative` for reading beneath this directory.
  OpenedEntry Open(const std::string& relative) const { return OpenBeneath(fd_.get(), relative); }
  /// Reads the whole regular file `relative` when it holds at most `cap` bytes; false with
  /// `*err` (missing, a symlink, larger than `cap`, a read error) otherwise.
  bool ReadSmall(const std::string& relative, std::size_t cap, std::string* out,
                 std::string* err) const;

 private:
  SetDir(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

/// True when `names`, a sorted listing (SetDir::List(), Subdirs()), holds `name`.
bool Listed(const std::vector<std::string>& names, const std::string& name);

/// The training step a name ends with: "checkpoint-500" 500, "global_step12" 12,
/// "iter_0000100" 100; -1 when `name` is not `prefix` followed by 1-18 digits.
std::int64_t StepFromName(const std::string& name, const std::string& prefix);

}  // namespace ckptwatch
