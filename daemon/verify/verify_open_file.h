// Verifying an open file with the readers that need no libhdf5 or libzip — the HDF5
// superblock, PyTorch, safetensors, format detection — and, for the rest, the deep readers the
// caller links. The light `ckptwatch` front links only this; the engine passes libhdf5's and
// libzip's readers (verifier.cc). verifier.h is the API; this is how it is split.
#pragma once

#include <string>

#include "verify/hdf5/superblock.h"
#include "verify/verifier.h"

namespace ckptwatch {

/// The readers that run libhdf5 or libzip. A null one is not linked in this binary: a file
/// that needs it gets a verdict saying it was not verified (callers check first).
struct DeepReaders {
  /// HDF5 past its superblock, which `header` found sound; `level` is structure or full.
  void (*hdf5)(const std::string& name, int fd, const HeaderCheck& header, Level level,
               const VerifyOptions& options, VerifyResult* result) = nullptr;
  /// A .keras archive, at any level.
  void (*keras)(const std::string& name, int fd, Level level, const VerifyOptions& options,
                VerifyResult* result) = nullptr;
};

/// VerifyOpenFile() with the deep readers given: stat, format detection, our own parsers, the
/// ok summary and the changed-while-read check are the same whoever calls.
VerifyResult VerifyOpenFileWith(int fd, const std::string& name, const VerifyOptions& options,
                                const DeepReaders& deep);

/// "1,234,567": counts in reasons.
std::string Thousands(std::uint64_t n);

/// Copies a superblock check's verdict, reason, version and expected size into `*result`.
void ApplyHeader(const HeaderCheck& header, VerifyResult* result);

}  // namespace ckptwatch
