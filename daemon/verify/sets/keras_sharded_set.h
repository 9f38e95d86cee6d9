// Keras 3 sharded weights: NAME.weights.json and the NAME_NNNNN.weights.h5 shards it names.
//
// keras/src/saving/saving_lib.py (Keras 3.10+, "Introduce weights sharding", keras-team/keras
// d865f5f0f2; read at 3422977a5e): model.save_weights("NAME.weights.json", max_shard_size=GB)
// goes through ShardedH5IOStore. It opens NAME_00000.weights.h5 (h5py), writes each layer's
// variables as datasets under its group ("/layers/dense/vars": "0", "1", ...), and when a
// shard would pass max_shard_size closes it and opens NAME_00001.weights.h5. Only close(),
// after the last shard is closed, writes the index — {"metadata": {"total_size": bytes},
// "weight_map": {"/layers/dense/vars": "NAME_00000.weights.h5" or a list of shard names when a
// layer's variables span shards}} — with a plain open(path, "w"): the index is the commit
// point, and load_weights() opens the shards it names. Shards of an earlier, larger save are
// not deleted, so a shard the index does not name is not at fault.
#pragma once

#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/set_dir.h"

namespace ckptwatch {

/// True for "*.weights.json" (only ShardedH5IOStore writes one).
bool IsKerasShardedIndexName(const std::string& name);

/// Judges the shards whose index is `index` (a name in `dir` itself), adding to `report`: the
/// index is valid JSON with a weight_map of shard names beside it; every shard it names is there
/// and passes the per-file verifier (HDF5: truncation, structure).
void CheckKerasSharded(const SetDir& dir, const std::string& index, const SetCheckOptions& options,
                       SetReport* report);

/// One "keras_sharded" set per Keras index among `names` (the files of `dir` itself).
std::vector<SetReport> FindKerasSharded(const SetDir& dir, const std::vector<std::string>& names,
                                        const SetCheckOptions& options);

}  // namespace ckptwatch
