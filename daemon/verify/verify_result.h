// The outcome of verifying one weight file, and its JSON and text forms.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "verify/verdict.h"

namespace ckptwatch {

/// What the Keras metadata of a file says, when it has any.
struct KerasInfo {
  std::string version;  ///< `keras_version` attribute / metadata.json; empty if absent.
  std::string backend;  ///< `backend` attribute; empty if absent.
  std::string kind;     ///< "full_model", "weights_only", "keras3"; empty: not Keras.
  std::vector<std::string> custom_classes;  ///< Sorted; loading needs custom_objects.
  /// Names the config uses that some Keras release ships (keras_releases.h); sorted.
  std::vector<std::string> builtin_classes;
  /// Keras-internal module paths a `.keras` config names ("keras.src.engine.functional"); sorted.
  std::vector<std::string> modules;
  int lambdas = 0;          ///< Lambda layers in the config.
  int lambda_bytecode = 0;  ///< Of them, those whose function is marshalled Python bytecode.
  /// Keras 1 arguments its built-in layers' configs use, which Keras 2 renamed (output_dim,
  /// init, W_regularizer, nb_filter, …; load_check.cc); sorted.
  std::vector<std::string> keras1_arguments;
};

/// Whether the environment expected to load a file will (load_check.h).
enum class LoadOutcome { kLoads, kNeedsCustomObjects, kIncompatible };
/// "loads", "needs_custom_objects", "incompatible": stable, in JSON, logs and metrics.
std::string_view LoadOutcomeName(LoadOutcome outcome);
std::optional<LoadOutcome> ParseLoadOutcome(std::string_view name);

struct LoadJudgement {
  LoadOutcome outcome = LoadOutcome::kLoads;
  std::string target;  ///< "keras=2.15,python=3.11"; empty: judged without a target.
  std::string reason;  ///< The rules that fired, "; "-separated; empty when nothing is in doubt.
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
  /// PyTorch: "module.name" of the classes a pickle imports beyond torch and Python; sorted.
  std::vector<std::string> pickle_globals;
  std::optional<LoadJudgement> load;  ///< Set by JudgeLoad() in the parent, for ok files.
  double elapsed_ms = 0;

  bool ok() const { return verdict == Verdict::kOk; }
};

/// Limits on what a hostile file can make a verdict carry (docs/verify.md).
inline constexpr std::size_t kMaxReasonBytes = 4096;
inline constexpr std::size_t kMaxPathBytes = 4096;       ///< PATH_MAX: longer cannot be opened.
inline constexpr std::size_t kMaxNameBytes = 256;        ///< A class name, Keras version, backend.
inline constexpr std::size_t kMaxCustomClasses = 100;    ///< Entries, "… and N more" included.
inline constexpr std::size_t kMaxJsonBytes = 64 * 1024;  ///< One ToJson() line.
inline constexpr std::size_t kMaxLoadFacts =
    64;  ///< builtin_classes, modules, keras1_arguments, globals.
inline constexpr std::size_t kMaxLoadFactBytes = 128;     ///< Each of them.
inline constexpr std::size_t kMaxLoadReasonBytes = 2048;

/// Truncates over-long strings (on UTF-8 boundaries, with a marker) and the custom class list
/// ("… and N more") so that ToJson(*result) dumps to at most kMaxJsonBytes. Idempotent.
/// ToJson(), FromJson() and FormatTextLine() apply it, so every consumer sees bounded results.
void BoundResult(VerifyResult* result);

/// One JSON object with every field of the bounded `result` (the `--json` line format). Strings
/// are EscapeBytes()-escaped (text_escape.h), so dump() with the default strict handler cannot
/// throw and two different paths never print the same.
nlohmann::json ToJson(const VerifyResult& result);
/// Parses what ToJson() wrote (unescaping strings) and bounds it; false with `*err` set on a
/// malformed object.
bool FromJson(const nlohmann::json& json, VerifyResult* result, std::string* err);
/// "PATH: VERDICT: reason", the text line of `ckptwatch verify`; path and reason are
/// EscapeForDisplay()-escaped so no control or bidi character reaches the terminal.
std::string FormatTextLine(const VerifyResult& result);

}  // namespace ckptwatch
