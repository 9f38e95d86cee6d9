// Hugging Face sharded weights: model.safetensors.index.json / pytorch_model.bin.index.json and
// the shards it names.
//
// transformers modeling_utils.py PreTrainedModel.save_pretrained: config.json first; then, when
// the state dict exceeds max_shard_size, split_torch_state_dict_into_shards() names the shards
// (model-00001-of-00003.safetensors ...); files of an earlier save with the same prefix that the
// new one does not reuse are deleted; each shard is written (safetensors.torch.save_file, or
// torch.save for .bin); and only then the index — {"metadata": {"total_size": N},
// "weight_map": {tensor: shard}} — is written. The index is the commit point: from_pretrained
// reads it and opens the shards it names.
#pragma once

#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/set_dir.h"

namespace ckptwatch {

/// True for "*.safetensors.index.json" and "*.bin.index.json" (HF's index names).
bool IsHfIndexName(const std::string& name);

/// Judges the sharded weights whose index is `index` (a name in `dir`'s subdirectory `sub`,
/// "" for `dir` itself), adding to `report`: the index is valid JSON with a weight_map; every
/// shard it names is there (a plain name beside the index); a safetensors shard's header holds
/// every tensor the index places in it and the shard is as long as its header says; every shard
/// passes the per-file verifier.
void CheckHfSharded(const SetDir& dir, const std::string& index, const SetCheckOptions& options,
                    SetReport* report);

/// One "hf_sharded" set per HF index among `names` (the files of `dir` itself).
std::vector<SetReport> FindHfSharded(const SetDir& dir, const std::vector<std::string>& names,
                                     const SetCheckOptions& options);

}  // namespace ckptwatch
