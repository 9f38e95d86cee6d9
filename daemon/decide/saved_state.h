// What the pipeline keeps across a restart: the last verdict of each file,
// so a restart verifies only what changed and does not report an old failure
// as new. The pipeline fills and reads it; state_file.h stores it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "watch/snapshot.h"

namespace ckptwatch {

struct SavedFile {
  std::string path;
  FileStat stat;
  std::string verdict;
  std::string cause;       ///< Empty: not a failed save.
  double since_unix = 0;   ///< A failure: when this file first failed this way.
  bool operator==(const SavedFile&) const = default;
};

struct SavedWatch {
  std::string path;  ///< The watch's root; state for another root is not used.
  std::vector<SavedFile> files;
  std::optional<SavedFile> last_good;  ///< Its `since_unix` is when it was verified.
  bool operator==(const SavedWatch&) const = default;
};

struct SavedState {
  std::map<std::string, SavedWatch> watches;  ///< By watch name.
  bool operator==(const SavedState&) const = default;
};

}  // namespace ckptwatch
