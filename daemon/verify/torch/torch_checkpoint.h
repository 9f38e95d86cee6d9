// Verifying PyTorch checkpoints: torch.save's zip archive (torch >= 1.6, also TorchScript's
// torch.jit.save) and its legacy format (a sequence of pickles, then raw storages).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "verify/byte_reader.h"  // ReadAt
#include "verify/verdict.h"

namespace ckptwatch {

/// The verdict and what was examined.
struct TorchCheck {
  Verdict verdict = Verdict::kCorrupt;
  std::string reason;                      ///< One sentence; empty when kOk.
  std::uint64_t tensors = 0;               ///< Tensors the main pickle rebuilds.
  std::uint64_t parameters = 0;            ///< Elements over the main pickle's storages.
  std::optional<std::uint64_t> nonfinite;  ///< NaN/±Inf in weight storages; set at kFull.
  /// Classes the pickle imports beyond torch and Python (a __main__ model class, omegaconf,
  /// numpy): loading needs that code, and torch.load(weights_only=True) refuses them.
  std::vector<std::string> foreign_globals;
  std::string note;  ///< Something an ok verdict should still say (big-endian data not scanned).
};

/// A torch.save or torch.jit.save zip archive. kHeader: the end-of-central-directory record is
/// present and consistent with the file size, the directory is whole, `<prefix>/data.pkl` exists
/// and the version record (`.data/version`, else `version`) holds a version torch.load reads, as
/// its std::stoull parses it (1 to 10). kStructure: every entry's local header; each `X.pkl` read
/// without executing it; every storage it names exists as `X/<key>` with numel x element size
/// bytes, and no `X/` entry is unreferenced. kFull: CRC-32 of every entry and a NaN/±Inf count over
/// the float storages of model weights (not optimizer or callback state).
TorchCheck CheckTorchZip(const ReadAt& read_at, std::uint64_t file_size, Level level);

/// torch.save(..., _use_new_zipfile_serialization=False). kHeader and kStructure: the magic
/// number, protocol version and system-info pickles, the main pickle and the storage key list are
/// complete, each storage record's element count matches what the pickle declares, and the
/// records end exactly at the end of the file (only this chain says how long the file should be). kFull: reads every storage and counts NaN/±Inf in
/// the weights.
TorchCheck CheckTorchLegacy(const ReadAt& read_at, std::uint64_t file_size, Level level);

}  // namespace ckptwatch
