// libFuzzer target: durations, sizes and free-space thresholds (daemon/config/units.h).
//
// The input is parsed as each kind of value. Whatever parses must round-trip through its
// canonical text (Format -> Parse gives the same value, and Format is a fixed point); whatever
// does not must say why in one line of printable ASCII, so a hostile config value cannot forge
// log lines. The first bytes also serve as a raw number for Format -> Parse directly.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

#include "config/units.h"

namespace {

using Millis = std::chrono::milliseconds;

[[noreturn]] void Fail(const char* what, std::string_view input, const std::string& detail) {
  std::fprintf(stderr, "units_fuzz: %s: input %s: %s\n", what,
               ckptwatch::QuoteForMessage(input, 256).c_str(), detail.c_str());
  std::abort();
}

bool PrintableAscii(std::string_view text) {
  for (const char c : text) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

void CheckError(const char* parser, std::string_view input, const std::string& err) {
  if (err.empty()) Fail(parser, input, "failed without a message");
  if (!PrintableAscii(err)) Fail(parser, input, "message is not printable ASCII: " + err);
}

void CheckDuration(std::string_view input, Millis d) {
  const std::string text = ckptwatch::FormatDuration(d);
  Millis back{};
  std::string err;
  if (!ckptwatch::ParseDuration(text, &back, &err) || back != d) {
    Fail("FormatDuration() does not parse back", input, text + " " + err);
  }
  if (ckptwatch::FormatDuration(back) != text)
    Fail("FormatDuration() is not canonical", input, text);
}

void CheckSize(std::string_view input, std::uint64_t n) {
  const std::string text = ckptwatch::FormatSize(n);
  std::uint64_t back = 0;
  std::string err;
  if (!ckptwatch::ParseSize(text, &back, &err) || back != n) {
    Fail("FormatSize() does not parse back", input, text + " " + err);
  }
}

void CheckThreshold(std::string_view input, const ckptwatch::SpaceThreshold& t) {
  const std::string text = ckptwatch::FormatSpaceThreshold(t);
  ckptwatch::SpaceThreshold back;
  std::string err;
  if (!ckptwatch::ParseSpaceThreshold(text, &back, &err) || !(back == t)) {
    Fail("FormatSpaceThreshold() does not parse back", input, text + " " + err);
  }
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  for (const std::uint64_t total : {std::uint64_t{0}, std::uint64_t{1} << 40, kMax}) {
    if (t.is_percent && t.BytesOf(total) > total) {
      Fail("a percentage of the filesystem exceeds it", input, text);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  Millis d{};
  std::string err;
  if (ckptwatch::ParseDuration(input, &d, &err)) {
    if (d.count() < 0) Fail("negative duration", input, "");
    CheckDuration(input, d);
  } else {
    CheckError("ParseDuration", input, err);
  }

  std::uint64_t n = 0;
  err.clear();
  if (ckptwatch::ParseSize(input, &n, &err)) {
    CheckSize(input, n);
  } else {
    CheckError("ParseSize", input, err);
  }

  ckptwatch::SpaceThreshold t;
  err.clear();
  if (ckptwatch::ParseSpaceThreshold(input, &t, &err)) {
    if (t.is_percent && !(t.percent > 0 && t.percent <= 100)) {
      Fail("percentage out of range", input, std::to_string(t.percent));
    }
    CheckThreshold(input, t);
  } else {
    CheckError("ParseSpaceThreshold", input, err);
  }

  const std::string quoted = ckptwatch::QuoteForMessage(input);
  if (!PrintableAscii(quoted) || quoted.size() > 4 * 64 + 5) {
    Fail("QuoteForMessage() output", input, quoted);
  }

  // Every value, not only those a parser produced: sizes and durations from raw bytes.
  if (size >= sizeof(std::uint64_t)) {
    std::uint64_t raw = 0;
    std::memcpy(&raw, data, sizeof raw);
    CheckSize(input, raw);
    CheckDuration(input, Millis(static_cast<Millis::rep>(raw >> 1)));
    const std::uint64_t milli = raw % 100'000 + 1;  // 0.001% .. 100%.
    CheckThreshold(input, {.is_percent = true, .bytes = 0, .percent = milli / 1000.0});
  }
  return 0;
}
