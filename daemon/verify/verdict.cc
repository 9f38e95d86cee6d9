#include "verify/verdict.h"

#include <array>
#include <utility>

namespace ckptwatch {
namespace {

constexpr std::array<std::pair<Verdict, std::string_view>, 13> kVerdictNames{{
    {Verdict::kOk, "ok"},
    {Verdict::kNotFound, "not_found"},
    {Verdict::kPermissionDenied, "permission_denied"},
    {Verdict::kEmpty, "empty"},
    {Verdict::kNotCheckpoint, "not_checkpoint"},
    {Verdict::kTruncated, "truncated"},
    {Verdict::kInProgress, "in_progress"},
    {Verdict::kCorrupt, "corrupt"},
    {Verdict::kNonfinite, "nonfinite"},
    {Verdict::kTimeout, "timeout"},
    {Verdict::kVerifierCrashed, "verifier_crashed"},
    {Verdict::kNotRegular, "not_regular"},
    {Verdict::kExternalData, "external_data"},
}};

constexpr std::array<std::pair<Level, std::string_view>, 3> kLevelNames{{
    {Level::kHeader, "header"},
    {Level::kStructure, "structure"},
    {Level::kFull, "full"},
}};

}  // namespace

std::string_view VerdictName(Verdict verdict) {
  for (const auto& [v, name] : kVerdictNames)
    if (v == verdict) return name;
  return "unknown";
}

std::optional<Verdict> ParseVerdict(std::string_view name) {
  for (const auto& [v, n] : kVerdictNames)
    if (n == name) return v;
  // Its name before 0.3.0 (it never meant "HDF5 only" once torch and safetensors were read):
  // state files and saved JSON written by older versions still read back.
  if (name == "not_hdf5") return Verdict::kNotCheckpoint;
  return std::nullopt;
}

std::string_view LevelName(Level level) {
  for (const auto& [l, name] : kLevelNames)
    if (l == level) return name;
  return "unknown";
}

std::optional<Level> ParseLevel(std::string_view name) {
  for (const auto& [l, n] : kLevelNames)
    if (n == name) return l;
  return std::nullopt;
}

}  // namespace ckptwatch
