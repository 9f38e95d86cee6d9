// Which names a watch looks at: its `patterns` globs on the file name.
#pragma once

#include <string>
#include <vector>

namespace ckptwatch {

/// True when the last component of `path` matches one of `patterns`
/// (fnmatch). Hidden names never match: atomic writers stage `.x.h5.XYZ`.
bool MatchesPatterns(const std::vector<std::string>& patterns, const std::string& path);

}  // namespace ckptwatch
