// Whether a given user or group could read a checkpoint or create files in a
// directory, evaluated the way the kernel does (owner/group/other bits,
// supplementary groups, POSIX ACLs, search permission on every ancestor).
// The daemon cannot simply try: it is not those users. The decision core asks through
// Env::WhyCannotRead() and Env::WhyCannotCreateIn() (decide/env.h); RealEnv calls these.
#pragma once

#include <string>

#include "config/config.h"

namespace ckptwatch {

/// Why `reader` cannot read `path`, or empty when it can. The reason names
/// who, the object that stops them, its mode and owner.
std::string WhyCannotRead(const std::string& path, const Principal& reader);

/// Why `writer` cannot create files in directory `dir` (write and search on
/// it, search on every ancestor), or empty when it can.
std::string WhyCannotCreateIn(const std::string& dir, const Principal& writer);

}  // namespace ckptwatch
