// Giving up capabilities: the confined verifier child does, and so does `ckptwatch verify`
// run by a user whose binary or environment carries some (it reads with the user's own
// permissions). Apart from confinement.cc, so that `ckptwatch` needs no libseccomp.
#pragma once

#include <string>

namespace ckptwatch {

/// Drops every capability of this process: effective, permitted and
/// inheritable sets, the ambient set, and the bounding set where allowed.
/// False with `*err` when the kernel refused.
bool DropCapabilities(std::string* err);

}  // namespace ckptwatch
