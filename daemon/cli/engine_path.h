// Where the ckptwatch-engine binary is, seen from the `ckptwatch` front.
#pragma once

#include <string>

namespace ckptwatch {

/// The file name of the engine: the binary that links libhdf5, libzip, libuv, spdlog and
/// prometheus-cpp and runs every command but the front's own `verify`.
inline constexpr char kEngineName[] = "ckptwatch-engine";

/// The engine beside this executable (a build tree) or in ../lib/ckptwatch/ (an installed
/// prefix: /usr/bin/ckptwatch finds /usr/lib/ckptwatch/ckptwatch-engine). Found from
/// /proc/self/exe, never from PATH or the environment: the daemon runs as root. Returns the
/// installed place when neither exists, so the error names where it was looked for.
std::string FindEngine();

}  // namespace ckptwatch
