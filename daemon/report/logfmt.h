// Formatting one log event as a logfmt line or a JSON object.
#pragma once

#include <chrono>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/log_fields.h"

namespace ckptwatch {

/// One event: what happened, with stable keys (docs/logging.md).
struct LogRecord {
  std::chrono::system_clock::time_point time;
  std::string_view level;  ///< "debug", "info", "warn", "error"
  std::string_view event;  ///< "verify", "watch_missing", …
  std::vector<LogField> fields;
  std::string message;  ///< Free text for people; empty: no msg key.
};

/// `value` as a logfmt value: bare when it is valid UTF-8 with no space, quote, '=', '\\',
/// control or bidi character, else double-quoted with EscapeForDisplay() escapes
/// (\" \\ \n \t \r \u00XX \uXXXX \xNN). Injective.
std::string LogfmtValue(std::string_view value);

/// `2026-11-23T19:30:01.123456Z level=error event=verify k=v … msg="…"`.
std::string FormatLogfmt(const LogRecord& record);

/// The same keys as one JSON object: {"ts":…,"level":…,"event":…,…,"msg":…}; values are
/// EscapeBytes()-escaped (invalid UTF-8 as \xNN) and dumped by DumpJsonLine().
std::string FormatJson(const LogRecord& record);

/// `json` on one line that never throws and is safe on a terminal: C1, bidi and line
/// separator code points inside strings are written as \uXXXX escapes.
std::string DumpJsonLine(const nlohmann::ordered_json& json);
std::string DumpJsonLine(const nlohmann::json& json);

/// RFC 3339 UTC with microseconds: "2026-11-23T19:30:01.123456Z".
std::string FormatTimestamp(std::chrono::system_clock::time_point time);

}  // namespace ckptwatch
