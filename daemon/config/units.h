// Durations and byte sizes as people write them in the config: "10s", "8GiB", "5%".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ckptwatch {

/// Parses a duration: one or more <integer><unit> terms with units in falling order, unit one of
/// ms, s, m, h, d ("300ms", "10s", "1h30m"); a bare integer is seconds ("90"). Rejects signs,
/// fractions, spaces, unknown units and totals above the int64 millisecond range. On failure
/// returns false and sets *err to a sentence naming the (quoted) input.
bool ParseDuration(std::string_view text, std::chrono::milliseconds* out, std::string* err);
/// The canonical text of `d` (>= 0): largest units first, e.g. "1h30m", "1s500ms", "0s".
/// ParseDuration(FormatDuration(d)) == d.
std::string FormatDuration(std::chrono::milliseconds d);

/// Parses a byte size: an integer with an optional unit, binary (KiB, MiB, GiB, TiB, PiB, EiB),
/// SI (kB or KB, MB, GB, TB, PB, EB: powers of 1000) or B; a bare integer is bytes. Units are
/// case-sensitive; ambiguous ones ("10G", "10gb") are rejected with a hint. Rejects signs,
/// fractions, spaces and values above 2^64-1. On failure sets *err like ParseDuration.
bool ParseSize(std::string_view text, std::uint64_t* out, std::string* err);
/// The canonical text of `bytes`: the unit that divides it exactly with the smallest number
/// ("8GiB", "10GB", "1023"). ParseSize(FormatSize(n)) == n.
std::string FormatSize(std::uint64_t bytes);

/// A free-space threshold: a byte count, or a percentage of the filesystem's size.
struct SpaceThreshold {
  bool is_percent = false;
  std::uint64_t bytes = 0;  ///< The threshold when !is_percent.
  double percent = 0;       ///< The threshold when is_percent; 0 < percent <= 100.

  /// The threshold in bytes on a filesystem of `total_bytes`.
  std::uint64_t BytesOf(std::uint64_t total_bytes) const;
  bool operator==(const SpaceThreshold&) const = default;
};

/// Parses a size as ParseSize() does, or a percentage "5%" / "2.5%" (0 < p <= 100, at most
/// three decimals).
bool ParseSpaceThreshold(std::string_view text, SpaceThreshold* out, std::string* err);
/// The canonical text of `t`: FormatSize() or e.g. "2.5%". Round-trips through the parser.
std::string FormatSpaceThreshold(const SpaceThreshold& t);

/// `text` in single quotes for an error message: at most `max_bytes` of it, non-printable bytes
/// and quotes escaped, so hostile input cannot forge lines or flood a log.
std::string QuoteForMessage(std::string_view text, size_t max_bytes = 64);

}  // namespace ckptwatch
