// How `verify` and `latest` print checkpoint sets and resume pointers: a JSON record per line
// ("kind": "checkpoint" / "resume_pointer") or a text line, every field escaped as a verdict
// line's are (a member's name comes from whoever wrote the directory).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/resume_pointer.h"

namespace ckptwatch {

/// {"kind": "checkpoint", "path", "layout", "verdict", "members", "missing", "at_fault",
/// "reason", "step"}; member lists capped at 1,000 names.
nlohmann::json SetToJson(const SetReport& report);
/// "PATH: checkpoint LAYOUT ok (12 members)" or "... incomplete: REASON".
std::string SetTextLine(const SetReport& report);

/// {"kind": "resume_pointer", "path", "pointer", "names", "verdict", "reason", "last_complete"}.
nlohmann::json PointerToJson(const PointerReport& report);
/// "PATH: resume pointer names TARGET, which is incomplete (...): resume will ...".
std::string PointerTextLine(const PointerReport& report);

}  // namespace ckptwatch
