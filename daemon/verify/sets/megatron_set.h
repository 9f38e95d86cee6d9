// Megatron-LM checkpoints: SAVE/iter_<7-digit N>/mp_rank_<tp:02d>[_<pp:03d>]/ and
// SAVE/latest_checkpointed_iteration.txt.
//
// megatron/training/checkpointing.py save_checkpoint (megatron/checkpointing.py before core
// 0.5): every rank of data-parallel rank 0 writes iter_N/mp_rank_TT[_PPP]/model_optim_rng.pt
// (with the distributed optimizer, every data-parallel rank also distrib_optim.pt there);
// then torch.distributed.barrier(), and rank 0 writes the tracker file
// latest_checkpointed_iteration.txt holding N ("release" for a release checkpoint), then a
// second barrier. The tracker is the commit point: load_checkpoint reads it to find the iteration.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/set_dir.h"

namespace ckptwatch {

/// True when `dir_name` is iter_<digits> or "release" and `names` hold an mp_rank_* directory.
bool LooksLikeMegatron(const std::string& dir_name, const std::vector<std::string>& names);

/// Judges iter_N in `dir`: the mp_rank directories form a full tensor x pipeline grid from 0,
/// each holds model_optim_rng.pt (and distrib_optim.pt if any does), each file verifies.
/// `tracker` is latest_checkpointed_iteration.txt's contents (nullopt: none): naming an
/// iteration older than N, this save was not committed.
SetReport CheckMegatron(const SetDir& dir, const std::string& dir_name,
                        const std::vector<std::string>& names,
                        const std::optional<std::string>& tracker, const SetCheckOptions& options);

}  // namespace ckptwatch
