// Verifying one weight file in this process: HDF5 (.h5, .hdf5, .weights.h5)
// or a Keras 3 .keras zip.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "verify_result.h"

namespace ckptwatch {

struct VerifyOptions {
  Level level = Level::kStructure;
  /// Files larger than this are verified at `structure` even when `full` is asked.
  std::uint64_t full_max_bytes = std::numeric_limits<std::uint64_t>::max();
  /// Largest model.weights.h5 of a .keras archive held in memory.
  std::uint64_t memory_budget = std::uint64_t{1} << 30;
};

/// Verifies `path` and never modifies, locks or renames it. Beyond `header`
/// this runs libhdf5/libzip on untrusted bytes: call it inside the isolated
/// verifier child (see verifier_child.h), except for header-only HDF5 checks.
VerifyResult VerifyFile(const std::string& path, const VerifyOptions& options);

/// True when `path` should be verified as a zip (.keras) rather than HDF5.
bool LooksLikeKerasArchive(const std::string& path);

}  // namespace ckptwatch
