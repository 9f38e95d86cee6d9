// Hugging Face Trainer checkpoints: OUTPUT_DIR/checkpoint-<global_step>/.
//
// transformers trainer.py Trainer._save_checkpoint: save_model() writes the weights
// (model.safetensors, or shards and their index — hf_sharded_set.h; pytorch_model.bin with
// save_safetensors=False; adapter_model.* for PEFT) and config.json; then, unless
// save_only_model, _save_optimizer_and_scheduler() writes optimizer.pt and scheduler.pt (and
// scaler.pt), and _save_rng_state() rng_state.pth (rng_state_<rank>.pth with several processes);
// then TrainerState.save_to_json() writes trainer_state.json, whose global_step is N. That file
// is the last one written: the commit point. Since 4.36 the whole directory is written as
// tmp-checkpoint-N and renamed (those are excluded from watching); resume_from_checkpoint=True
// picks the checkpoint-N with the largest N (get_last_checkpoint) whether or not it is whole.
#pragma once

#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/set_dir.h"

namespace ckptwatch {

/// True when `dir`'s name is checkpoint-<N> and `names` hold a Trainer file
/// (trainer_state.json, weights, optimizer.pt, scheduler.pt, rng_state*.pth).
bool LooksLikeTrainerCheckpoint(const std::string& dir_name, const std::vector<std::string>& names);

/// Judges the checkpoint-N in `dir`: trainer_state.json is there, parses and says global_step N;
/// the weights are there and verify (single file, or an HF sharded set); optimizer.pt,
/// scheduler.pt and rng_state*.pth, when present, verify, and optimizer.pt is there when
/// scheduler.pt is.
SetReport CheckTrainerCheckpoint(const SetDir& dir, const std::string& dir_name,
                                 const std::vector<std::string>& names,
                                 const SetCheckOptions& options);

}  // namespace ckptwatch
