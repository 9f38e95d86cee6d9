// Verdicts and verification levels: the stable strings of ckptwatch's interface.
#pragma once

#include <optional>
#include <string_view>

namespace ckptwatch {

/// What a `truncated` reason adds when a file is shorter than its own metadata says.
inline constexpr char kCutShortHint[] = "(disk full or writer killed during save?)";

/// What ckptwatch concluded about one weight file. The names returned by
/// VerdictName() are part of the interface (CLI, JSON, logs, metrics).
enum class Verdict {
  kOk,
  kNotFound,          ///< ENOENT: the classic `OSError [Errno 2]`.
  kPermissionDenied,  ///< EACCES/EPERM opening or reading the file.
  kEmpty,             ///< 0 bytes.
  kNotCheckpoint,     ///< No weight format ckptwatch reads (`not_hdf5` before 0.3.0).
  kTruncated,         ///< Shorter than its own metadata says.
  kInProgress,        ///< A writer has it open, or it changed while verified.
  kCorrupt,           ///< Metadata or data cannot be read back.
  kNonfinite,         ///< NaN or Inf in floating-point weights.
  kTimeout,           ///< The verifier exceeded its time limit.
  kVerifierCrashed,   ///< The isolated verifier died (signal) or misbehaved.
  kNotRegular,        ///< A FIFO, socket, device or directory: never opened for reading.
  kExternalData,      ///< Data stored in another file (external storage, VDS, external link): not followed.
};

/// Every verdict, in declaration order (for metrics that pre-create label sets).
inline constexpr Verdict kAllVerdicts[] = {
    Verdict::kOk,        Verdict::kNotFound,   Verdict::kPermissionDenied, Verdict::kEmpty,
    Verdict::kNotCheckpoint,   Verdict::kTruncated,  Verdict::kInProgress,       Verdict::kCorrupt,
    Verdict::kNonfinite, Verdict::kTimeout,    Verdict::kVerifierCrashed,  Verdict::kNotRegular,
    Verdict::kExternalData};

/// How deep verification goes; each level includes the ones before it.
enum class Level { kHeader, kStructure, kFull };

/// The stable lower_snake_case name of `verdict`, e.g. "permission_denied".
std::string_view VerdictName(Verdict verdict);
/// Inverse of VerdictName(), also accepting names older versions wrote; nullopt for an
/// unknown name.
std::optional<Verdict> ParseVerdict(std::string_view name);

/// "header", "structure" or "full".
std::string_view LevelName(Level level);
/// Inverse of LevelName(); nullopt for an unknown name.
std::optional<Level> ParseLevel(std::string_view name);

}  // namespace ckptwatch
