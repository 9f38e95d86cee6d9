// Splitting a slash-separated path string, without touching the filesystem.
#pragma once

#include <string>

namespace ckptwatch {

/// The part of `path` before its last '/': "a/b" for "a/b/c", "" for a name without one.
inline std::string ParentPath(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

/// The part of `path` after its last '/': "c" for "a/b/c", the whole of a name without one.
inline std::string LastComponent(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace ckptwatch
