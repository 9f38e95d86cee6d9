// Verifying one weight file in this process, by its content: HDF5 (.h5, .hdf5, .weights.h5),
// a Keras 3 .keras zip, a PyTorch checkpoint (zip, TorchScript or legacy) or safetensors.
// VerifyOpenFile() and VerifyFile() link libhdf5 and libzip (verifier.cc); everything else here
// does not (verify_open_file.cc), so the light `ckptwatch` front can use it.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "base/open_beneath.h"
#include "verify/verify_result.h"

namespace ckptwatch {

struct VerifyOptions {
  Level level = Level::kStructure;
  /// Files larger than this are verified at `structure` even when `full` is asked.
  std::uint64_t full_max_bytes = std::numeric_limits<std::uint64_t>::max();
  /// Largest model.weights.h5 of a .keras archive held in memory.
  std::uint64_t memory_budget = std::uint64_t{1} << 30;
  /// At `full`, read unfiltered float data straight from the file (Hdf5Source::direct_reads);
  /// false reads it all through libhdf5, the reference tests compare against.
  bool direct_reads = true;
};

/// Verifies the file open at `fd` (read-only; borrowed) through that
/// descriptor alone — nothing is opened by name — and never modifies, locks
/// or renames it. `name` labels the result and messages. Beyond `header` this
/// runs libhdf5/libzip on untrusted bytes: call it inside the confined
/// verifier child (see verifier_child.h), except for header-only HDF5 checks.
VerifyResult VerifyOpenFile(int fd, const std::string& name, const VerifyOptions& options);

/// The daemon's first look at a file, in its own process: format detection and our own
/// bounds-checked, fuzzed header parsers (HDF5 superblock, zip directory, safetensors header),
/// never libhdf5, libzip or a pickle. Returns the verdict when that settles it — `options.level`
/// is header, or the file is empty, changing or no checkpoint at all, which deeper levels
/// would report alike (a truncated file goes to the child: see verifier.cc) — and nullopt when a confined child must verify at `options.level`
/// (a .keras archive and a legacy torch.save file always go to the child).
std::optional<VerifyResult> FirstLook(int fd, const std::string& name, const VerifyOptions& options);

/// Makes `*result` in_progress when the file open at `fd` no longer has the
/// size, times and inode it had in `before`: a writer rewrote it during the
/// verification, so the verdict describes a mix of two saves.
void MarkIfChanged(int fd, const struct stat& before, VerifyResult* result);

/// Opens `path` with OpenRegularFile() (a FIFO or device is never opened)
/// and verifies it with VerifyOpenFile().
VerifyResult VerifyFile(const std::string& path, const VerifyOptions& options);

/// The verdict for a file that OpenBeneath()/OpenRegularFile() did not open
/// (`entry.kind` is not kRegular): not_regular, not_found, permission_denied.
VerifyResult UnopenedResult(const std::string& path, const OpenedEntry& entry, Level level);

/// True when `path` names a *.bin file whose verdict says its content is no checkpoint format and
/// no stand-in for one (an LFS pointer or HTML page still counts): the daemon skips it quietly.
bool IsQuietlySkipped(const std::string& path, const VerifyResult& result);

/// True when the file open at `fd`, named `name`, is a zip (.keras) rather than HDF5.
bool LooksLikeKerasArchive(const std::string& name, int fd);

}  // namespace ckptwatch
