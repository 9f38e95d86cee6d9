// What one log line is made of, as every floor that asks for one names it: its level and its
// fields. Writing the line (logfmt, JSON, the journal) is report/'s; the names a config file
// gives the levels are config/'s (LogLevelName()).
#pragma once

#include <string>
#include <utility>

namespace ckptwatch {

/// How severe an event is; a log keeps the events at or above its configured level.
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

/// A key and its already-formatted value.
using LogField = std::pair<std::string, std::string>;

}  // namespace ckptwatch
