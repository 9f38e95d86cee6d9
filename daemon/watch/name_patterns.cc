#include "name_patterns.h"

#include <fnmatch.h>

namespace ckptwatch {

bool MatchesPatterns(const std::vector<std::string>& patterns, const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  for (const std::string& pattern : patterns)
    if (fnmatch(pattern.c_str(), name.c_str(), FNM_PERIOD) == 0) return true;
  return false;
}

}  // namespace ckptwatch
