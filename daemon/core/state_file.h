// The state file: SavedState as JSON under the unit's StateDirectory=,
// replaced atomically (write, fsync, rename, fsync the directory). A missing
// file is a first start; an unreadable or corrupt one is ignored with a
// warning — the daemon then verifies the newest file of each watch, as on a
// first start — never a reason not to run.
#pragma once

#include <string>

#include "config.h"
#include "saved_state.h"

namespace ckptwatch {

/// `state.file`, else `$STATE_DIRECTORY/state.json` (the first directory
/// systemd names), else "" (no state kept).
std::string StateFilePath(const Config& config);

/// Reads `path`. False with `*err` when it exists but cannot be used; true
/// with an empty state when it does not exist.
bool LoadStateFile(const std::string& path, SavedState* out, std::string* err);

/// Replaces `path` with `state`. False with `*err`; the old file then stays.
bool WriteStateFile(const std::string& path, const SavedState& state, std::string* err);

}  // namespace ckptwatch
