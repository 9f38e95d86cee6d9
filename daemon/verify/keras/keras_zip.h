// Reading a Keras 3 `.keras` archive: a zip of config.json, metadata.json and
// model.weights.h5.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "verify/verify_result.h"

namespace ckptwatch {

/// What the archive holds, and whether the zip itself is sound.
struct KerasArchive {
  Verdict verdict = Verdict::kOk;
  std::string reason;
  std::vector<std::uint8_t> weights;  ///< model.weights.h5, read whole (CRC checked).
  bool weights_over_budget = false;   ///< Too large to hold; only its CRC was checked.
  KerasInfo keras;  ///< version from metadata.json; kind "keras3"; classes and facts from config.json.
};

/// Reads the archive open at `fd` (borrowed; read with pread) and checks the zip is complete (central directory
/// present, entries consistent with their local headers). Reads config.json,
/// metadata.json and model.weights.h5 (up to `memory_budget` bytes; larger
/// weights are streamed for their CRC only); at kFull also reads every other
/// entry so each CRC is checked.
KerasArchive ReadKerasArchive(int fd, Level level, std::uint64_t memory_budget);

}  // namespace ckptwatch
