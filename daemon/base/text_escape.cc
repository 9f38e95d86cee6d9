#include "base/text_escape.h"

namespace ckptwatch {
namespace {

constexpr char kHex[] = "0123456789abcdef";

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

int LowerHexValue(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

void AppendHexByte(std::string* out, std::string_view prefix, unsigned char byte) {
  *out += prefix;
  *out += kHex[byte >> 4];
  *out += kHex[byte & 15];
}

}  // namespace

std::size_t DecodeUtf8(std::string_view s, std::size_t i, char32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  std::size_t len;
  char32_t value;
  char32_t min;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2, value = b0 & 0x1f, min = 0x80;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3, value = b0 & 0x0f, min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4, value = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    value = (value << 6) | (b & 0x3f);
  }
  // Overlong forms would let one character have two spellings; surrogates are not characters.
  if (value < min || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return 0;
  *cp = value;
  return len;
}

bool IsValidUtf8(std::string_view s) {
  char32_t cp;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = DecodeUtf8(s, i, &cp);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

bool IsUnsafeCodePoint(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
         (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 ||
         cp == 0x2029;
}

std::string EscapeBytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  char32_t cp;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = DecodeUtf8(s, i, &cp);
    if (len == 0) {
      AppendHexByte(&out, "\\x", static_cast<unsigned char>(s[i++]));
    } else if (s[i] == '\\' && s.size() - i >= 4 && s[i + 1] == 'x' && IsLowerHex(s[i + 2]) &&
               IsLowerHex(s[i + 3])) {
      // A literal "\xNN" in a name must not read back as the byte NN.
      out += "\\x5c";
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

std::string UnescapeBytes(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && s.size() - i >= 4 && s[i + 1] == 'x' && IsLowerHex(s[i + 2]) &&
        IsLowerHex(s[i + 3])) {
      out += static_cast<char>(LowerHexValue(s[i + 2]) * 16 + LowerHexValue(s[i + 3]));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string EscapeForDisplay(std::string_view s, bool escape_quotes) {
  std::string out;
  out.reserve(s.size());
  char32_t cp;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = DecodeUtf8(s, i, &cp);
    if (len == 0) {
      AppendHexByte(&out, "\\x", static_cast<unsigned char>(s[i++]));
      continue;
    }
    i += len;
    if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '"' && escape_quotes) {
      out += "\\\"";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (IsUnsafeCodePoint(cp)) {
      // Every unsafe code point is below U+10000, so four hex digits always suffice.
      out += "\\u";
      for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 15];
    } else {
      out.append(s.substr(i - len, len));
    }
  }
  return out;
}

std::string_view Utf8Prefix(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  std::size_t end = 0;
  char32_t cp;
  while (end < s.size()) {
    std::size_t len = DecodeUtf8(s, end, &cp);
    if (len == 0) len = 1;  // a stray byte is a unit of its own
    if (end + len > max_bytes) break;
    end += len;
  }
  return s.substr(0, end);
}

std::string_view Utf8Suffix(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  std::size_t start = s.size() - max_bytes;
  // Step back to where the sequence `start` falls into begins; if that sequence is whole
  // there, it does not fit, so the suffix starts after it.
  std::size_t lead = start;
  while (lead > 0 && start - lead < 3 && (static_cast<unsigned char>(s[lead]) & 0xc0) == 0x80)
    --lead;
  char32_t cp;
  const std::size_t len = DecodeUtf8(s, lead, &cp);
  if (len != 0 && lead < start && lead + len > start) start = lead + len;
  return s.substr(start);
}

}  // namespace ckptwatch
