// TensorFlow SavedModel directories and V1 (pre-2016) single-table checkpoints.
//
// SavedModel (tensorflow/python/saved_model/builder_impl.py SavedModelBuilder.save; TF2:
// tensorflow/python/saved_model/save.py save_and_return_nodes): the variables are saved first,
// as a tensor bundle at variables/variables (tf_bundle.h: variables.data-0000i-of-0000N, then
// variables.index), assets are copied to assets/, and saved_model.pb (or .pbtxt) is written
// last — by file_io.atomic_write_string_to_file in TF2, a temporary name renamed — followed in
// TF >= 2.9 by fingerprint.pb. saved_model.pb is the commit point: a loader reads it first.
//
// V1 checkpoints (tensorflow/core/util/tensor_slice_writer.cc, TF < 0.12 and
// saver write_version=V1): one LevelDB-style table PREFIX holding every tensor slice, written at a
// temporary name and renamed, then PREFIX.meta; no index, no shards.
#pragma once

#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/set_dir.h"

namespace ckptwatch {

/// True when `names` (the directory's) make it a SavedModel: saved_model.pb(txt), or a
/// variables/ directory (a SavedModel whose .pb was never written).
bool LooksLikeSavedModel(const SetDir& dir, const std::vector<std::string>& names);

/// Judges the SavedModel in `dir`: the commit point saved_model.pb is there and not empty, and
/// its variables/ bundle (if it has one) is complete (CheckTfBundle()).
SetReport CheckSavedModel(const SetDir& dir, const std::vector<std::string>& names,
                          const SetCheckOptions& options);

/// V1 checkpoints in `dir`: every PREFIX with a PREFIX.meta beside it whose PREFIX file is a
/// table (no .index); judged by reading the table back.
std::vector<SetReport> FindTfV1Checkpoints(const SetDir& dir,
                                           const std::vector<std::string>& names);

}  // namespace ckptwatch
