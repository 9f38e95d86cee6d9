#include "config/units.h"

#include <array>
#include <cmath>
#include <limits>
#include <optional>

namespace ckptwatch {
namespace {

constexpr std::string_view kDurationExamples = "(e.g. 500ms, 10s, 5m, 1h30m)";
constexpr std::string_view kSizeExamples = "(e.g. 512MiB, 8GiB, 10GB, 1024)";

struct Unit {
  std::string_view name;
  std::uint64_t factor;
};

// Falling order: a duration's terms must follow it, so "1h30m" parses and "30m1h" does not.
constexpr std::array<Unit, 5> kDurationUnits{{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

constexpr std::uint64_t kKi = 1024;
constexpr std::uint64_t kK = 1000;
constexpr std::array<Unit, 14> kSizeUnits{{
    {"B", 1},
    {"KiB", kKi},
    {"MiB", kKi* kKi},
    {"GiB", kKi* kKi* kKi},
    {"TiB", kKi* kKi* kKi* kKi},
    {"PiB", kKi* kKi* kKi* kKi* kKi},
    {"EiB", kKi* kKi* kKi* kKi* kKi* kKi},
    {"kB", kK},
    {"KB", kK},
    {"MB", kK* kK},
    {"GB", kK* kK* kK},
    {"TB", kK* kK* kK* kK},
    {"PB", kK* kK* kK* kK* kK},
    {"EB", kK* kK* kK* kK* kK* kK},
}};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Reads the digits at text[*pos...] into *value: nullopt when there are none, else whether the
// number fits in uint64 (the digits are consumed either way).
std::optional<bool> ReadDigits(std::string_view text, size_t* pos, std::uint64_t* value) {
  const size_t start = *pos;
  bool fits = true;
  std::uint64_t v = 0;
  for (; *pos < text.size() && IsDigit(text[*pos]); ++*pos) {
    if (__builtin_mul_overflow(v, 10, &v) ||
        __builtin_add_overflow(v, static_cast<std::uint64_t>(text[*pos] - '0'), &v)) {
      fits = false;
    }
  }
  if (*pos == start) return std::nullopt;
  *value = v;
  return fits;
}

std::string_view ReadLetters(std::string_view text, size_t* pos) {
  const size_t start = *pos;
  while (*pos < text.size() && IsAlpha(text[*pos])) ++*pos;
  return text.substr(start, *pos - start);
}

std::string NotA(std::string_view text, std::string_view what, std::string_view examples) {
  return QuoteForMessage(text) + " is not a " + std::string(what) + " " + std::string(examples);
}

}  // namespace

bool ParseDuration(std::string_view text, std::chrono::milliseconds* out, std::string* err) {
  constexpr std::uint64_t kMaxMs = std::numeric_limits<std::chrono::milliseconds::rep>::max();
  if (!text.empty() && text[0] == '-') {
    *err = QuoteForMessage(text) + " is negative; durations are 0 or more " +
           std::string(kDurationExamples);
    return false;
  }
  size_t pos = 0;
  std::uint64_t total = 0;
  size_t next_unit = 0;  // Index into kDurationUnits that the next term may use.
  bool too_long = false;
  do {
    std::uint64_t number = 0;
    const std::optional<bool> fits = ReadDigits(text, &pos, &number);
    if (!fits) {
      *err = NotA(text, "duration", kDurationExamples);
      return false;
    }
    const std::string_view unit_name = ReadLetters(text, &pos);
    std::uint64_t factor = 0;
    if (unit_name.empty()) {
      // A bare number is seconds, but only alone: "1h30" is more likely a slip than 1h30s.
      if (pos != text.size() || total != 0 || next_unit != 0) {
        *err = NotA(text, "duration", kDurationExamples);
        return false;
      }
      factor = 1000;
      next_unit = kDurationUnits.size();
    } else {
      size_t i = next_unit;
      while (i < kDurationUnits.size() && kDurationUnits[i].name != unit_name) ++i;
      if (i == kDurationUnits.size()) {
        *err = NotA(text, "duration", kDurationExamples);
        return false;
      }
      factor = kDurationUnits[i].factor;
      next_unit = i + 1;
    }
    std::uint64_t ms = 0;
    if (!*fits || __builtin_mul_overflow(number, factor, &ms) ||
        __builtin_add_overflow(total, ms, &total) || total > kMaxMs) {
      too_long = true;  // Keep scanning: junk later in the text is the better message.
    }
  } while (pos < text.size());
  if (too_long) {
    *err = QuoteForMessage(text) + " is too long a duration (at most " +
           FormatDuration(std::chrono::milliseconds(kMaxMs)) + ")";
    return false;
  }
  *out = std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(total));
  return true;
}

std::string FormatDuration(std::chrono::milliseconds d) {
  if (d.count() <= 0) return "0s";
  auto left = static_cast<std::uint64_t>(d.count());
  std::string text;
  for (const Unit& unit : kDurationUnits) {
    if (left >= unit.factor) {
      text += std::to_string(left / unit.factor);
      text += unit.name;
      left %= unit.factor;
    }
  }
  return text;
}

bool ParseSize(std::string_view text, std::uint64_t* out, std::string* err) {
  if (!text.empty() && text[0] == '-') {
    *err =
        QuoteForMessage(text) + " is negative; sizes are 0 or more " + std::string(kSizeExamples);
    return false;
  }
  size_t pos = 0;
  std::uint64_t number = 0;
  const std::optional<bool> fits = ReadDigits(text, &pos, &number);
  const std::string_view unit_name = ReadLetters(text, &pos);
  if (!fits || pos != text.size()) {
    *err = NotA(text, "size", kSizeExamples);
    return false;
  }
  std::uint64_t factor = 1;
  if (!unit_name.empty()) {
    const Unit* unit = nullptr;
    for (const Unit& u : kSizeUnits) {
      if (u.name == unit_name) unit = &u;
    }
    if (unit == nullptr) {
      // "10G", "10gb", "10Gi": say which two things they could have meant.
      const char first = static_cast<char>(unit_name[0] & ~0x20);  // ASCII upper case.
      const std::string_view digits = text.substr(0, text.size() - unit_name.size());
      if (std::string_view("KMGTPE").find(first) != std::string_view::npos && digits.size() <= 20) {
        *err = QuoteForMessage(text) + " has an ambiguous unit; write " + std::string(digits) +
               first + "iB (powers of 1024) or " + std::string(digits) +
               (first == 'K' ? 'k' : first) + "B (powers of 1000)";
      } else {
        *err = NotA(text, "size", kSizeExamples);
      }
      return false;
    }
    factor = unit->factor;
  }
  std::uint64_t bytes = 0;
  if (!*fits || __builtin_mul_overflow(number, factor, &bytes)) {
    *err = QuoteForMessage(text) + " is too large a size (at most " +
           std::to_string(std::numeric_limits<std::uint64_t>::max()) + " bytes)";
    return false;
  }
  *out = bytes;
  return true;
}

std::string FormatSize(std::uint64_t bytes) {
  if (bytes == 0) return "0";
  // The exact unit with the smallest number; "KB" is accepted but "kB" is the SI spelling.
  const Unit* best = &kSizeUnits[0];
  for (const Unit& u : kSizeUnits) {
    if (bytes % u.factor == 0 && bytes / u.factor < bytes / best->factor && u.name != "KB") {
      best = &u;
    }
  }
  if (best->factor == 1) return std::to_string(bytes);
  return std::to_string(bytes / best->factor) + std::string(best->name);
}

std::uint64_t SpaceThreshold::BytesOf(std::uint64_t total_bytes) const {
  if (!is_percent) return bytes;
  const auto milli = static_cast<unsigned __int128>(std::llround(percent * 1000));
  return static_cast<std::uint64_t>(total_bytes * milli / 100'000);
}

bool ParseSpaceThreshold(std::string_view text, SpaceThreshold* out, std::string* err) {
  if (text.empty() || text.back() != '%') {
    std::uint64_t bytes = 0;
    if (!ParseSize(text, &bytes, err)) {
      if (*err == NotA(text, "size", kSizeExamples)) {
        *err = QuoteForMessage(text) + " is not a size or a percentage (e.g. 10GiB, 5%)";
      }
      return false;
    }
    *out = SpaceThreshold{.is_percent = false, .bytes = bytes, .percent = 0};
    return true;
  }
  // Integer arithmetic in thousandths of a percent: no locale, no "inf", no "1e2".
  const std::string_view number = text.substr(0, text.size() - 1);
  size_t pos = 0;
  std::uint64_t whole = 0;
  const std::optional<bool> fits = ReadDigits(number, &pos, &whole);
  std::uint64_t milli = 0;
  bool ok = fits.has_value();
  if (ok && pos < number.size()) {
    ok = number[pos] == '.';
    const size_t frac_start = ++pos;
    std::uint64_t frac = 0;
    ok = ok && ReadDigits(number, &pos, &frac).has_value() && pos == number.size() &&
         pos - frac_start <= 3;
    if (ok) {
      for (size_t n = pos - frac_start; n < 3; ++n) frac *= 10;
      milli = frac;
    }
  }
  if (!ok) {
    *err = QuoteForMessage(text) + " is not a percentage (e.g. 5%, 2.5%)";
    return false;
  }
  if (*fits && whole <= 100) milli += whole * 1000;
  if (!*fits || whole > 100 || milli == 0 || milli > 100'000) {
    *err = QuoteForMessage(text) + " is out of range (more than 0%, at most 100%)";
    return false;
  }
  *out = SpaceThreshold{.is_percent = true, .bytes = 0, .percent = milli / 1000.0};
  return true;
}

std::string FormatSpaceThreshold(const SpaceThreshold& t) {
  if (!t.is_percent) return FormatSize(t.bytes);
  const long long milli = std::llround(t.percent * 1000);
  std::string text = std::to_string(milli / 1000);
  if (long long frac = milli % 1000; frac != 0) {
    std::string digits = std::to_string(frac);
    digits.insert(0, 3 - digits.size(), '0');
    while (digits.back() == '0') digits.pop_back();
    text += "." + digits;
  }
  return text + "%";
}

std::string QuoteForMessage(std::string_view text, size_t max_bytes) {
  std::string quoted = "'";
  for (size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\'' || c == '\\') {
      quoted += '\\';
      quoted += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      quoted += static_cast<char>(c);
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      quoted += "\\x";
      quoted += kHex[c >> 4];
      quoted += kHex[c & 0xf];
    }
  }
  if (text.size() > max_bytes) quoted += "...";
  return quoted + "'";
}

}  // namespace ckptwatch
