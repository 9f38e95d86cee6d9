#include "logfmt.h"

#include <ctime>
#include <nlohmann/json.hpp>

namespace ckptwatch {

std::string LogfmtValue(std::string_view value) {
  bool bare = !value.empty();
  for (unsigned char c : value)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) bare = false;
  if (bare) return std::string(value);
  std::string out = "\"";
  for (unsigned char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          // Control characters would let a hostile file name forge log lines.
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
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

std::string FormatJson(const LogRecord& record) {
  nlohmann::ordered_json object;
  object["ts"] = FormatTimestamp(record.time);
  object["level"] = record.level;
  object["event"] = record.event;
  for (const auto& [key, value] : record.fields) object[key] = value;
  if (!record.message.empty()) object["msg"] = record.message;
  // Replace invalid UTF-8 (file names are bytes) rather than throw.
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ckptwatch
