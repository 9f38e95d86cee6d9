#include "watch/snapshot.h"

namespace ckptwatch {

std::vector<std::string> DiffSnapshots(const Snapshot& before, const Snapshot& after) {
  std::vector<std::string> changed;
  for (const auto& [path, stat] : after.files) {
    auto it = before.files.find(path);
    if (it == before.files.end() || it->second != stat) changed.push_back(path);
  }
  return changed;
}

}  // namespace ckptwatch
