// Which kind of file this is, from its content (its name only where two formats overlap): the
// weight formats ckptwatch verifies, and what is commonly saved under a checkpoint's name instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "verify/byte_reader.h"  // ReadAt

namespace ckptwatch {

enum class FileFormat {
  kUnknown,
  kHdf5,         ///< HDF5 signature at 0 or a user-block offset.
  kKerasZip,     ///< Zip with config.json / metadata.json / model.weights.h5.
  kTorchZip,     ///< torch.save zip: <prefix>/data.pkl, data/N, version.
  kTorchScript,  ///< torch.jit.save zip: also code/ and constants.pkl.
  kZip,          ///< Another zip archive.
  kTorchLegacy,  ///< torch.save(_use_new_zipfile_serialization=False): pickled magic number.
  kSafetensors,  ///< 8-byte header length, then a JSON object.
  kLfsPointer,   ///< A Git LFS pointer committed or checked out instead of the file.
  kHtml,         ///< An HTML page (a download that returned an error or confirmation page).
  kShardIndex,   ///< A sharded checkpoint's *.index.json (weight_map), not weights itself.
  kJson,         ///< Other JSON.
  kPickle,       ///< A Python pickle that is not torch.save's.
  kText,         ///< Other printable text.
};

/// The stable `format` string of the JSON output: "hdf5", "keras_zip", "torch_zip",
/// "torchscript", "zip", "torch_legacy", "safetensors", "lfs_pointer", "html", "sharded_index",
/// "json", "pickle", "text", "unknown".
std::string_view FormatName(FileFormat format);

/// True for the formats ckptwatch verifies as weights.
bool IsWeightFormat(FileFormat format);

/// What the content of a file of `file_size` (> 0) bytes is. Reads its first 4 KiB, 8 bytes at
/// each HDF5 user-block offset, and for a zip its end records and central directory (bounded:
/// zip_directory.h), or the first local header's name when a cut-short zip has no directory.
/// The content decides, except where two formats overlap: a file `name`d `.h5` or `.hdf5` (what
/// Keras hands to h5py, which finds the signature at 0, 512, 1024, ...) is HDF5 when it has the
/// signature at a user-block offset, whatever its user block holds (a zip, a pickle); under any
/// other name a zip or pickle at offset 0 wins, as torch.load and Keras's `.keras` loader decide.
FileFormat DetectFormat(const ReadAt& read_at, std::uint64_t file_size, std::string_view name = {});

/// One sentence on why a file of a non-weight format is not a checkpoint, naming the load error
/// it causes ("invalid load key, '<'"); reads up to 4 KiB more for an LFS pointer's size.
std::string NotWeightsReason(FileFormat format, const ReadAt& read_at, std::uint64_t file_size);

}  // namespace ckptwatch
