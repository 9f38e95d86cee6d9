// The state file: SavedState as JSON under the unit's StateDirectory=,
// replaced atomically (write, fsync, rename, fsync the directory). A missing
// file is a first start; an unreadable or corrupt one is ignored with a
// warning — the daemon then verifies the newest file of each watch, as on a
// first start — never a reason not to run.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"
#include "decide/saved_state.h"

namespace ckptwatch {

/// `state.file`, else `$STATE_DIRECTORY/state.json` (the first directory
/// systemd names), else "" (no state kept).
std::string StateFilePath(const Config& config);

/// Reads `path`. False with `*err` when it exists but cannot be used; true
/// with an empty state when it does not exist.
bool LoadStateFile(const std::string& path, SavedState* out, std::string* err);

/// The state in `text`, the contents of the state file `path` (named in
/// `*err`). False with `*err` and an empty `*out` for anything but a state
/// file this version wrote; never throws, whatever the bytes.
bool ParseStateText(std::string_view text, const std::string& path, SavedState* out,
                    std::string* err);

/// The text WriteStateFile() stores for `state` (one line of JSON).
std::string StateFileText(const SavedState& state);

/// Replaces `path` with `state`. False with `*err`; the old file then stays.
bool WriteStateFile(const std::string& path, const SavedState& state, std::string* err);

}  // namespace ckptwatch
