// The status socket's document: a StatusSnapshot as JSON, and back (for
// `ckptwatch status`). Versioned so a newer CLI can tell an older daemon.
#pragma once

#include <string>

#include "status_snapshot.h"

namespace ckptwatch {

/// One JSON object, ending in a newline. File names that are not UTF-8 are
/// written with U+FFFD in place of the bad bytes.
std::string StatusJson(const StatusSnapshot& status, long pid, const std::string& version);

/// Parses what StatusJson() wrote. False with `*err` when `text` is not that.
bool ParseStatusJson(const std::string& text, StatusSnapshot* out, std::string* err);

}  // namespace ckptwatch
