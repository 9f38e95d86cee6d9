// DeepSpeed checkpoints: SAVE_DIR/<tag>/ (tag global_step<N> by default) and SAVE_DIR/latest.
//
// deepspeed/runtime/engine.py DeepSpeedEngine.save_checkpoint: every model-parallel rank of
// data-parallel rank 0 writes <tag>/mp_rank_<mp:02d>_model_states.pt (_save_checkpoint; pipeline
// engines also write layer_<ll>-model_states.pt); under ZeRO every rank writes
// <tag>/zero_pp_rank_<dp>_mp_rank_<mp:02d>_optim_states.pt (bf16_zero_pp_rank_... with the bf16
// optimizer; _save_zero_checkpoint); then dist.barrier(), and rank 0 writes SAVE_DIR/latest
// holding the tag (save_latest=True) and copies zero_to_fp32.py. `latest` is the commit point:
// load_checkpoint(tag=None) reads it and loads that tag.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/set_dir.h"

namespace ckptwatch {

/// True when `names` hold a DeepSpeed model- or optimizer-states file.
bool LooksLikeDeepSpeed(const std::vector<std::string>& names);

/// Judges the tag directory `dir` (named `tag`): model states of model-parallel ranks
/// 0..M-1 all there; ZeRO optimizer states, if any, of data-parallel ranks 0..D-1 for every one of
/// those M; each file verifies. `latest` is what SAVE_DIR/latest says (nullopt: no such file):
/// naming an older global_step than this one, this save was not committed.
SetReport CheckDeepSpeed(const SetDir& dir, const std::string& tag,
                         const std::vector<std::string>& names,
                         const std::optional<std::string>& latest, const SetCheckOptions& options);

}  // namespace ckptwatch
