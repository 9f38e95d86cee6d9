// Will the environment that loads a checkpoint load it? The facts the verifier child reads from a
// model config or pickle, and the rules that judge them against a load target (docs/verify.md,
// "Load prediction"). The child never needs the target: the same facts serve every watch.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "verify/verify_result.h"

namespace ckptwatch {

/// The environment expected to load the checkpoints: "keras=2.15,python=3.11". Either may be
/// absent; versions are major.minor (a patch level is accepted and ignored).
struct LoadTarget {
  std::optional<std::pair<int, int>> keras;
  std::optional<std::pair<int, int>> python;
  bool empty() const { return !keras && !python; }
  bool operator==(const LoadTarget&) const = default;
};

/// Parses "2.15", "3", "3.11.4" into {major, minor}; false with `*err` set otherwise.
bool ParseVersion(std::string_view text, std::pair<int, int>* out, std::string* err);
/// Parses "keras=3.6,python=3.11" (either part alone too); false with `*err` set otherwise.
bool ParseLoadTarget(std::string_view text, LoadTarget* out, std::string* err);
/// "keras=3.6,python=3.11"; "" for an empty target.
std::string FormatLoadTarget(const LoadTarget& target);

/// Adds what `model_config` (and `training_config`, when non-null) says about loading to `keras`:
/// the built-in class names it uses, its Keras-internal module paths, its Lambda layers and how
/// their functions are stored. Bounded (kMaxLoadFactNames); never throws.
void CollectKerasLoadFacts(const nlohmann::json& model_config,
                           const nlohmann::json* training_config, KerasInfo* keras);

/// Judges an ok `result` against `target` (empty: what is certain without one); nullopt for a
/// result that is not ok. Applies every rule of docs/verify.md's table.
std::optional<LoadJudgement> JudgeLoad(const VerifyResult& result, const LoadTarget& target);

}  // namespace ckptwatch
