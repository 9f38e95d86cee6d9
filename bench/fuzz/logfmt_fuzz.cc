// libFuzzer target: log lines (daemon/report/logfmt.h).
//
// LogfmtValue() of any bytes must be one valid UTF-8 token without control, bidi or separator
// characters, which the small logfmt reader below turns back into exactly those bytes. A whole
// FormatLogfmt() line built from the input must be one line that the reader splits back into
// the record's fields, and FormatJson() must be one line of JSON with the same values
// (EscapeBytes()-escaped: invalid UTF-8 as \xNN).
#include <fuzzer/FuzzedDataProvider.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/text_escape.h"
#include "report/logfmt.h"

namespace {

[[noreturn]] void Fail(const char* what, std::string_view input, std::string_view output) {
  std::fprintf(stderr, "logfmt_fuzz: %s\n--- input (%zu bytes) ---\n%.*s\n--- output ---\n%.*s\n",
               what, input.size(), static_cast<int>(input.size()), input.data(),
               static_cast<int>(output.size()), output.data());
  std::abort();
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads the logfmt value at text[*pos]: a bare run of bytes up to the next space, or a
// double-quoted string with \" \\ \n \r \t and \u00XX escapes. nullopt when it is neither.
std::optional<std::string> ReadValue(std::string_view text, std::size_t* pos) {
  std::size_t i = *pos;
  std::string value;
  if (i >= text.size()) return std::nullopt;
  if (text[i] != '"') {
    while (i < text.size() && text[i] != ' ') {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c < ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return std::nullopt;
      value += text[i++];
    }
    if (value.empty()) return std::nullopt;
    *pos = i;
    return value;
  }
  for (++i; i < text.size() && text[i] != '"'; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < ' ' || c == 0x7f) return std::nullopt;
    if (c != '\\') {
      value += text[i];
      continue;
    }
    if (++i >= text.size()) return std::nullopt;
    switch (text[i]) {
      case '"':
      case '\\':
        value += text[i];
        break;
      case 'n':
        value += '\n';
        break;
      case 'r':
        value += '\r';
        break;
      case 't':
        value += '\t';
        break;
      case 'u': {  // an unsafe code point, all below U+10000: back to its UTF-8
        if (text.size() - i < 5) return std::nullopt;
        unsigned cp = 0;
        for (int k = 1; k <= 4; ++k) {
          const int digit = HexDigit(text[i + k]);
          if (digit < 0) return std::nullopt;
          cp = cp * 16 + static_cast<unsigned>(digit);
        }
        if (cp < 0x80) {
          value += static_cast<char>(cp);
        } else if (cp < 0x800) {
          value += static_cast<char>(0xc0 | (cp >> 6));
          value += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
          value += static_cast<char>(0xe0 | (cp >> 12));
          value += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
          value += static_cast<char>(0x80 | (cp & 0x3f));
        }
        i += 4;
        break;
      }
      case 'x': {  // a byte that is not part of valid UTF-8
        if (text.size() - i < 3) return std::nullopt;
        const int hi = HexDigit(text[i + 1]);
        const int lo = HexDigit(text[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        value += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        return std::nullopt;
    }
  }
  if (i >= text.size()) return std::nullopt;  // No closing quote.
  *pos = i + 1;
  return value;
}

// Not valid UTF-8, or a control, bidi or separator code point a terminal would act on.
bool HasControlCharacter(std::string_view text) {
  char32_t cp;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = ckptwatch::DecodeUtf8(text, i, &cp);
    if (len == 0 || ckptwatch::IsUnsafeCodePoint(cp)) return true;
    i += len;
  }
  return false;
}

// Expects " key=" and a value equal to `want` at text[*pos].
bool ExpectField(std::string_view text, std::size_t* pos, std::string_view key,
                 std::string_view want) {
  const std::string prefix = " " + std::string(key) + "=";
  if (text.substr(*pos, prefix.size()) != prefix) return false;
  *pos += prefix.size();
  const std::optional<std::string> value = ReadValue(text, pos);
  return value && *value == want;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const std::string value = ckptwatch::LogfmtValue(input);
  if (HasControlCharacter(value)) Fail("LogfmtValue() has a control character", input, value);
  std::size_t pos = 0;
  const std::optional<std::string> back = ReadValue(value, &pos);
  if (!back || pos != value.size() || *back != input) {
    Fail("LogfmtValue() does not read back", input, value);
  }

  FuzzedDataProvider provider(data, size);
  ckptwatch::LogRecord record;
  record.time = std::chrono::system_clock::time_point(
      std::chrono::system_clock::duration(provider.ConsumeIntegral<std::int64_t>()));
  record.level = "warn";
  const std::string event = provider.ConsumeRandomLengthString(64);
  record.event = event;
  const int fields = provider.ConsumeIntegralInRange(0, 4);
  for (int i = 0; i < fields; ++i) {
    record.fields.emplace_back("k" + std::to_string(i), provider.ConsumeRandomLengthString(256));
  }
  record.message = provider.ConsumeRemainingBytesAsString();

  const std::string line = ckptwatch::FormatLogfmt(record);
  if (HasControlCharacter(line)) Fail("FormatLogfmt() line has a control character", input, line);
  // The timestamp is one token; then the fields in order.
  pos = line.find(' ');
  bool read_back = pos != std::string::npos && ExpectField(line, &pos, "level", "warn") &&
                   ExpectField(line, &pos, "event", event);
  for (const auto& [key, field] : record.fields) {
    read_back = read_back && ExpectField(line, &pos, key, field);
  }
  if (read_back && !record.message.empty()) {
    read_back = ExpectField(line, &pos, "msg", record.message);
  }
  if (!read_back || pos != line.size()) Fail("FormatLogfmt() does not read back", input, line);

  const std::string json_line = ckptwatch::FormatJson(record);
  if (json_line.find('\n') != std::string::npos)
    Fail("FormatJson() is not one line", input, json_line);
  const nlohmann::json json = nlohmann::json::parse(json_line, nullptr, false);
  if (json.is_discarded() || !json.is_object()) Fail("FormatJson() is not JSON", input, json_line);
  auto same = [&](const char* key, const std::string& want) {
    return json.contains(key) && json[key] == ckptwatch::EscapeBytes(want);
  };
  bool json_ok = same("event", event) && (record.message.empty() || same("msg", record.message));
  for (const auto& [key, field] : record.fields) json_ok = json_ok && same(key.c_str(), field);
  if (!json_ok) Fail("FormatJson() does not read back", input, json_line);
  return 0;
}
