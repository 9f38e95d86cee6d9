// Why a save failed, and whether the next one will fit: turning a verdict and
// the filesystem's free space into the cause a person acts on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/units.h"
#include "verify/verify_result.h"

namespace ckptwatch {

/// Space on a filesystem as an unprivileged writer sees it (statvfs f_bavail). The decision core
/// gets it from Env::StatSpace() and Env::SpaceForFile(); core/filesystem_space.h reads it.
struct FsSpace {
  FsSpace() = default;
  FsSpace(std::uint64_t avail_bytes, std::uint64_t size_bytes) : avail(avail_bytes), size(size_bytes) {}

  std::uint64_t avail = 0;
  std::uint64_t size = 0;
  /// Set when the file owner's disk quota leaves less than the filesystem
  /// does (`avail` is then what the quota leaves): "uid 1000's quota (…)".
  std::string quota;
};

/// The cause of a broken checkpoint and a sentence about it.
struct SaveCause {
  std::string name;         ///< "disk_full", or the verdict's name.
  std::string explanation;  ///< Empty unless the cause adds to the verdict's reason.
};

/// `disk_full` when a `truncated`, `empty`, `in_progress` or `corrupt` file sits on a
/// filesystem whose free space at detection is below the bytes the file is
/// missing, below `min_free`, or near zero; otherwise the verdict itself.
SaveCause ClassifyFailure(const VerifyResult& result, const FsSpace& space,
                          const std::optional<SpaceThreshold>& min_free);

/// Non-empty (the reason) when free space is below `min_free` or below 1.5×
/// the last good checkpoint's size: the next save will not fit.
std::string LowSpaceReason(const FsSpace& space, const std::optional<SpaceThreshold>& min_free,
                           std::uint64_t last_good_bytes);

/// "12.3 GiB" for logs.
std::string HumanBytes(std::uint64_t bytes);

}  // namespace ckptwatch
