// Verifying a safetensors file (8-byte little-endian header length, JSON header, data region)
// by the rules the reference implementation (huggingface/safetensors) enforces on load.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "verify/byte_reader.h"  // ReadAt
#include "verify/verdict.h"

namespace ckptwatch {

/// Largest header the reference implementation reads (MAX_HEADER_SIZE): a longer one is refused.
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

/// The verdict and what was examined.
struct SafetensorsCheck {
  Verdict verdict = Verdict::kCorrupt;
  std::string reason;                      ///< One sentence; empty when kOk.
  std::optional<std::uint64_t> expected_bytes;  ///< 8 + header + the last tensor's end.
  std::uint64_t tensors = 0;
  std::uint64_t parameters = 0;            ///< Elements over all tensors.
  std::uint64_t metadata_entries = 0;      ///< `__metadata__` strings.
  std::optional<std::uint64_t> nonfinite;  ///< NaN/±Inf in float tensors; set at kFull.
};

/// True when the first bytes `head` (at least 9 of them) look like a safetensors file: a plausible
/// header length followed by the start of a JSON object.
bool LooksLikeSafetensors(const std::uint8_t* head, std::size_t n);

/// kHeader: the length is sane and within the file, the header is valid JSON of the documented
/// shape (`__metadata__` a string map), every dtype known. kStructure: each tensor's dtype x shape
/// is its byte range, the ranges tile the data region from 0 with no gap or overlap, and the
/// file ends exactly at the last range. kFull: reads every byte and counts NaN/±Inf in F64, F32,
/// F16, BF16, F8_E5M2, F8_E4M3 and F8_E8M0 tensors. Memory: the header, at most
/// kMaxSafetensorsHeader bytes, a compact entry per tensor and one read buffer.
SafetensorsCheck CheckSafetensors(const ReadAt& read_at, std::uint64_t file_size, Level level);

}  // namespace ckptwatch
