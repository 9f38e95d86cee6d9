// Which names a watch looks at: its `patterns` globs on the file name, less
// what its `exclude` globs name anywhere on the path (staging directories).
#pragma once

#include <string>
#include <vector>

namespace ckptwatch {

/// True when the last component of `path` matches one of `patterns`
/// (fnmatch). Hidden names never match: atomic writers stage `.x.h5.XYZ`.
bool MatchesPatterns(const std::vector<std::string>& patterns, const std::string& path);

/// True when a component of `relative` (a path below a watch root) matches one
/// of `exclude` (fnmatch, a leading dot matched literally only by a pattern
/// that starts with one): the file, or the directory it is in, is a staging
/// area such as Orbax's `ckpt.orbax-checkpoint-tmp-12/`.
bool Excluded(const std::vector<std::string>& exclude, const std::string& relative);

}  // namespace ckptwatch
