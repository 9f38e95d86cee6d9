// The outcome of verifying one weight file, and its JSON and text forms.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "verdict.h"

namespace ckptwatch {

/// What the Keras metadata of a file says, when it has any.
struct KerasInfo {
  std::string version;   ///< `keras_version` attribute / metadata.json; empty if absent.
  std::string backend;   ///< `backend` attribute; empty if absent.
  std::string kind;      ///< "full_model", "weights_only", "keras3"; empty: not Keras.
  std::vector<std::string> custom_classes;  ///< Sorted; loading needs custom_objects.
};

/// Everything ckptwatch reports about one file. Counters describe what was
/// examined before the verdict was reached.
struct VerifyResult {
  std::string path;
  Verdict verdict = Verdict::kCorrupt;
  std::string reason;  ///< One sentence a person can act on.
  Level level = Level::kStructure;
  std::string format;  ///< "hdf5", "keras_zip", or empty when unrecognised.
  std::uint64_t bytes = 0;
  std::optional<std::uint64_t> expected_bytes;  ///< HDF5 end-of-file address.
  std::optional<int> superblock_version;
  std::uint64_t datasets = 0;
  std::uint64_t parameters = 0;            ///< Total elements over all datasets.
  std::optional<std::uint64_t> nonfinite;  ///< NaN/Inf count; set at `full` only.
  KerasInfo keras;
  double elapsed_ms = 0;

  bool ok() const { return verdict == Verdict::kOk; }
};

/// One JSON object with every field of `result` (the `--json` line format).
nlohmann::json ToJson(const VerifyResult& result);
/// Parses what ToJson() wrote; false with `*err` set on a malformed object.
bool FromJson(const nlohmann::json& json, VerifyResult* result, std::string* err);
/// "PATH: VERDICT: reason", the text line of `ckptwatch verify`.
std::string FormatTextLine(const VerifyResult& result);

}  // namespace ckptwatch
