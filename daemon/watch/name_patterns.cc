#include "watch/name_patterns.h"

#include <fnmatch.h>

#include "base/path_name.h"

namespace ckptwatch {

bool MatchesPatterns(const std::vector<std::string>& patterns, const std::string& path) {
  const std::string name = LastComponent(path);
  for (const std::string& pattern : patterns)
    if (fnmatch(pattern.c_str(), name.c_str(), FNM_PERIOD) == 0) return true;
  return false;
}

bool Excluded(const std::vector<std::string>& exclude, const std::string& relative) {
  if (exclude.empty()) return false;
  std::size_t start = 0;
  while (start < relative.size()) {
    std::size_t end = relative.find('/', start);
    if (end == std::string::npos) end = relative.size();
    const std::string component = relative.substr(start, end - start);
    for (const std::string& pattern : exclude)
      if (fnmatch(pattern.c_str(), component.c_str(), FNM_PERIOD) == 0) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace ckptwatch
