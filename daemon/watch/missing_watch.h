// A watch root that does not exist yet: a mistyped path, or a checkpoint
// directory the trainer has not created. Instead of failing with ENOENT the
// daemon watches the deepest ancestor that exists and walks down to the root
// as its components appear.
#pragma once

#include <functional>
#include <string>

namespace ckptwatch {

/// The deepest directory among `path` and its ancestors; `path` itself when it
/// is a directory. Follows only symlinks owned by root (see watch_root.h);
/// "/" at worst.
std::string NearestExistingAncestor(const std::string& path);

/// What counts as an existing directory: IsTrustedDirectory() in the daemon,
/// an in-memory tree in the pipeline tests.
using DirectoryTest = std::function<bool(const std::string& path)>;

/// NearestExistingAncestor() as `is_directory` sees the tree.
std::string NearestExistingAncestor(const std::string& path, const DirectoryTest& is_directory);

/// Where the daemon is on the way to a missing watch root. It keeps a
/// non-recursive watch on ancestor() and feeds it that watch's events.
class MissingWatch {
 public:
  enum class Step {
    kWait,       ///< Nothing to do.
    kMoveWatch,  ///< ancestor() changed: watch it instead, then call Refresh().
    kExists,     ///< The root is a directory now: watch it and scan it.
  };

  /// `root` is made absolute and normalised; ancestor() is computed at once.
  explicit MissingWatch(const std::string& root);
  /// As above, asking `is_directory` what exists.
  MissingWatch(const std::string& root, DirectoryTest is_directory);

  /// The root being waited for.
  const std::string& root() const { return root_; }
  /// The directory to watch for the next component.
  const std::string& ancestor() const { return ancestor_; }

  /// A kDirectoryCreated (or kFileWritten: the name may be taken by a file for
  /// now) at `path` under ancestor(). Paths off the way to root() are kWait.
  Step OnEntry(const std::string& path);

  /// Looks again. Call after moving the watch (components created before it
  /// existed made no event) and on kDirectoryGone for ancestor().
  Step Refresh();

 private:
  DirectoryTest is_directory_;
  std::string root_;
  std::string ancestor_;
};

}  // namespace ckptwatch
