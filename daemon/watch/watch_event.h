// What a watch backend reports: something happened at a path. Nothing about
// what the file contains, whether it settled or what to do with it.
#pragma once

#include <string>

namespace ckptwatch {

/// One notification from a watch backend. Events are hints, not facts: the
/// file may be gone or rewritten again by the time the daemon looks.
struct WatchEvent {
  enum class Kind {
    kFileWritten,        ///< A file was closed after writing, or renamed into place.
    kFileWriting,        ///< A file was created or written, not closed (yet): a save under way.
    kDirectoryCreated,   ///< A directory appeared (mkdir or renamed in); scan it.
    kDirectoryGone,      ///< A watched directory was deleted, moved away or unmounted.
    kAttributesChanged,  ///< Mode, owner or times changed (a permission fix, say).
    kNameGone,           ///< A file or directory was deleted or renamed away from this name.
    kOverflow,           ///< Events were lost; rescan the watch.
    kWatchFailed,        ///< A directory could not be watched; see `reason`.
  };

  Kind kind = Kind::kFileWritten;
  int watch_id = -1;   ///< The id AddWatch() returned for the watch this belongs to.
  std::string path;    ///< The file or directory; for kOverflow, the watch root.
  std::string reason;  ///< Cause and remedy, for kOverflow and kWatchFailed only.
  /// For kNameGone: where the name went when it was renamed within the same
  /// watch and the backend saw both halves of the rename (inotify's cookie);
  /// "" for a delete, or a rename out of the watch.
  std::string moved_to;
};

}  // namespace ckptwatch
