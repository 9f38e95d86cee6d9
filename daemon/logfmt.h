// Formatting one log event as a logfmt line or a JSON object.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckptwatch {

/// A key and its already-formatted value.
using LogField = std::pair<std::string, std::string>;

/// One event: what happened, with stable keys (docs/logging.md).
struct LogRecord {
  std::chrono::system_clock::time_point time;
  std::string_view level;  ///< "debug", "info", "warn", "error"
  std::string_view event;  ///< "verify", "watch_missing", …
  std::vector<LogField> fields;
  std::string message;     ///< Free text for people; empty: no msg key.
};

/// `value` as a logfmt value: bare when it has no space, quote, '=' or
/// control character, else double-quoted with \" \\ \n \t \r and \u00XX escapes.
std::string LogfmtValue(std::string_view value);

/// `2026-11-23T19:30:01.123456Z level=error event=verify k=v … msg="…"`.
std::string FormatLogfmt(const LogRecord& record);

/// The same keys as one JSON object: {"ts":…,"level":…,"event":…,…,"msg":…}.
std::string FormatJson(const LogRecord& record);

/// RFC 3339 UTC with microseconds: "2026-11-23T19:30:01.123456Z".
std::string FormatTimestamp(std::chrono::system_clock::time_point time);

}  // namespace ckptwatch
