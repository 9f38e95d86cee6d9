// Structure- and full-level verification of an HDF5 file through libhdf5.
//
// libhdf5 is not hardened against malformed files and its error paths can
// crash or hang: call this only inside the isolated verifier child.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "verify/verdict.h"
#include "verify/verify_result.h"

namespace ckptwatch {

/// What walking an HDF5 file found.
struct Hdf5Inspection {
  Verdict verdict = Verdict::kOk;
  std::string reason;
  std::uint64_t datasets = 0;
  std::uint64_t parameters = 0;
  std::optional<std::uint64_t> nonfinite;  ///< Set when level is kFull.
  std::uint64_t direct_datasets = 0;       ///< Of `datasets`, read straight from the file.
  /// At kFull: datasets whose values were not read because decoding them would
  /// pass `decode_budget` (DecodeBudget()), and the bytes they would decode to.
  std::uint64_t full_skipped_datasets = 0;
  std::uint64_t full_skipped_bytes = 0;
  std::uint64_t decode_budget = 0;
  KerasInfo keras;
};

/// Where the bytes are: a file on disk, or an in-memory image (a .keras zip's
/// model.weights.h5). `file_size` and `base_address` bound every raw-data
/// address: storage past the end means the file was cut short.
struct Hdf5Source {
  int fd = -1;                          ///< Read through when `image` is empty (borrowed).
  std::string name;                     ///< For messages only; never opened.
  std::span<const std::uint8_t> image;  ///< Opened without copying when non-empty.
  std::uint64_t file_size = 0;
  std::uint64_t base_address = 0;       ///< Superblock base (user block size).
  /// Where the superblock says the file ends (absolute, HeaderCheck::expected_bytes): libhdf5
  /// reads nothing past it (H5Fget_eoa() refuses drivers without SWMR support, so it is
  /// passed in). Without it every read goes through libhdf5.
  std::optional<std::uint64_t> end_of_allocation;
  /// At kFull, read unfiltered floating-point data straight from `fd`/`image` rather than
  /// through libhdf5 (same verdicts, faster); false reads everything through libhdf5.
  bool direct_reads = true;
};

/// The bytes libhdf5 may decode (decompress, or fill) at kFull for a file of
/// `file_size` bytes: 4x the file, at least 256 MiB. The file's size alone
/// bounds nothing: 64 MiB of gzip decodes to 64 GiB, which held a verifier for
/// minutes, so a dataset that would take the total past this is not read (its
/// structure is still checked) and the verdict says so.
std::uint64_t DecodeBudget(std::uint64_t file_size);

/// Opens `source` read-only with HDF5 file locking off (a reader's lock makes
/// the trainer's next h5py.File(path, "w") fail) through the descriptor or the
/// image only — libhdf5 is never given a path to open — walks every group, dataset
/// and attribute, checks raw storage lies inside the file, every datatype is one
/// h5py and libhdf5 can load (LoadableDatatypes), and the Keras layout is
/// consistent; at kFull also reads every dataset byte (filters, fletcher32)
/// in bounded memory and counts NaN/Inf. Unfiltered float datasets whose storage
/// lies inside the file are read after the walk in file order, straight from the
/// descriptor (`direct_reads`); anything else, or a failed direct read, goes
/// through libhdf5, whose error becomes the verdict. A dataset stored in other files
/// (external storage, a virtual dataset) or an external link is kExternalData:
/// following it would read a file nobody asked about.
Hdf5Inspection InspectHdf5(const Hdf5Source& source, Level level);

/// How many files this process has handed libhdf5 (calls of InspectHdf5). A warm verifier
/// compares it around a file: a verdict but ok from a file libhdf5 never parsed (a torch or
/// safetensors file, an HDF5 file our own header check refused) leaves no libhdf5 state
/// suspect, so the verifier may go on; one from a file libhdf5 parsed may not.
std::uint64_t Hdf5FilesInspected();

/// The HDF5 library version, e.g. "1.10.8".
std::string Hdf5LibraryVersion();

}  // namespace ckptwatch
