// The status socket's document: a StatusSnapshot as JSON, and back (for
// `ckptwatch status`). Versioned so a newer CLI can tell an older daemon.
#pragma once

#include <string>

#include "decide/status_snapshot.h"

namespace ckptwatch {

/// One JSON object, ending in a newline. Strings are EscapeBytes()-escaped (a byte that is
/// not UTF-8 as `\xNN`, as in the log's JSON) and written by DumpJsonLine(): no raw control,
/// C1 or bidi character.
std::string StatusJson(const StatusSnapshot& status, long pid, const std::string& version);

/// Parses what StatusJson() wrote, strings unescaped to the bytes they stood for. False with `*err`
/// when `text` is not that.
bool ParseStatusJson(const std::string& text, StatusSnapshot* out, std::string* err);

}  // namespace ckptwatch
