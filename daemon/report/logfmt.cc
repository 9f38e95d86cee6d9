#include "report/logfmt.h"

#include <algorithm>
#include <ctime>
#include <iterator>
#include <nlohmann/json.hpp>

#include "base/text_escape.h"
#include "report/events.h"

namespace ckptwatch {

std::string LogfmtValue(std::string_view value) {
  // Control and bidi characters would let a hostile file name forge or reorder log lines;
  // invalid UTF-8 is escaped so two different names never print the same.
  std::string escaped = EscapeForDisplay(value, true);
  const bool bare = !value.empty() && escaped.size() == value.size() &&
                    value.find_first_of(" =\"") == std::string_view::npos;
  if (bare) return escaped;
  return "\"" + escaped + "\"";
}

namespace {

std::string EscapeUnsafeCodePoints(const std::string& text) {
  // Unsafe code points can only sit inside strings (JSON's own syntax is ASCII), where \uXXXX
  // means the same: a reader gets the same value, a terminal cannot be reordered.
  std::string out;
  out.reserve(text.size());
  char32_t cp;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t len = DecodeUtf8(text, i, &cp);
    if (len == 0) len = 1;
    if (IsUnsafeCodePoint(cp)) {  // C0 never gets here raw, DEL does
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(cp));
      out += escape;
    } else {
      out.append(text, i, len);
    }
    i += len;
  }
  return out;
}

}  // namespace

// The replace handler is only a backstop: callers escape invalid UTF-8 before.
std::string DumpJsonLine(const nlohmann::ordered_json& json) {
  return EscapeUnsafeCodePoints(
      json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string DumpJsonLine(const nlohmann::json& json) {
  return EscapeUnsafeCodePoints(
      json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string FormatTimestamp(std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const auto since_epoch = time.time_since_epoch();
  const std::time_t seconds = duration_cast<std::chrono::seconds>(since_epoch).count();
  const long micros = static_cast<long>(duration_cast<microseconds>(since_epoch).count() % 1000000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[96];  // sized for any int the compiler can imagine in each field
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                micros < 0 ? 0 : micros);
  return text;
}

std::string FormatLogfmt(const LogRecord& record) {
  std::string line = FormatTimestamp(record.time);
  line += " level=";
  line += record.level;
  line += " event=";
  line += LogfmtValue(record.event);
  for (const auto& [key, value] : record.fields) {
    line += ' ';
    line += key;
    line += '=';
    line += LogfmtValue(value);
  }
  if (!record.message.empty()) line += " msg=" + LogfmtValue(record.message);
  return line;
}

namespace {

// "-12", "3.1": what std::to_string and "%.1f" write; nothing else becomes a JSON number (no
// exponent, no leading zeros, no inf or nan), so the text read back is the text logged.
bool PlainDecimal(std::string_view v) {
  std::size_t i = !v.empty() && v[0] == '-' ? 1 : 0;
  const std::size_t digits = i;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
  if (i == digits || i - digits > 18 || (v[digits] == '0' && i - digits > 1)) return false;
  if (i == v.size()) return true;
  if (v[i] != '.' || ++i == v.size()) return false;
  const std::size_t fraction = i;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
  return i == v.size() && i - fraction <= 6;
}

// Typed by key (events.h), never by the look of the value: a file named "123" stays a string.
nlohmann::ordered_json JsonValue(const std::string& key, const std::string& value) {
  auto is = [&](const auto& keys) {
    return std::find(std::begin(keys), std::end(keys), key) != std::end(keys);
  };
  if (is(kNumberKeys) && PlainDecimal(value)) {
    if (value.find('.') != std::string::npos) return std::stod(value);
    if (value[0] == '-') return std::stoll(value);
    return std::stoull(value);
  }
  if (is(kBooleanKeys) && (value == "true" || value == "false")) return value == "true";
  return EscapeBytes(value);
}

}  // namespace

std::string FormatJson(const LogRecord& record) {
  nlohmann::ordered_json object;
  object["ts"] = FormatTimestamp(record.time);
  object["level"] = record.level;
  object["event"] = EscapeBytes(record.event);
  // File names and attribute strings are bytes: invalid UTF-8 becomes \xNN, as in ToJson().
  for (const auto& [key, value] : record.fields) object[EscapeBytes(key)] = JsonValue(key, value);
  if (!record.message.empty()) object["msg"] = EscapeBytes(record.message);
  return DumpJsonLine(object);
}

}  // namespace ckptwatch
