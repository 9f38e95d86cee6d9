#include "verify/sets/set_names.h"

#include <regex>

#include "base/path_name.h"
#include "verify/sets/hf_sharded_set.h"
#include "verify/sets/keras_sharded_set.h"

namespace ckptwatch {

SetRole SetRoleOf(const std::string& relative) {
  const std::string name = LastComponent(relative);
  if (name == ".metadata" || name == "saved_model.pb" || name == "saved_model.pbtxt" ||
      name == "trainer_state.json" || name == "latest" ||
      name == "latest_checkpointed_iteration.txt" || name == "checkpoint" || IsHfIndexName(name) ||
      IsKerasShardedIndexName(name) || name == "_CHECKPOINT_METADATA" ||
      name == "commit_success.txt" || HasStemAndSuffix(name, ".index"))
    return SetRole::kCommitPoint;
  static const std::regex member(
      R"(.*\.distcp|.*\.data-[0-9]{5}-of-[0-9]{5}|.*-[0-9]{5}-of-[0-9]{5}\.(safetensors|bin)|.*_model_states\.pt|)"
      R"(.*_optim_states\.pt|model_optim_rng\.pt|distrib_optim\.pt|optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state.*\.pth|)"
      R"(fingerprint\.pb|.*\.meta|.*_[0-9]{5}\.weights\.h5)");
  if (std::regex_match(name, member)) return SetRole::kMember;
  // The weights of a Trainer checkpoint-N are its members too.
  const std::string dir = LastComponent(ParentPath(relative));
  if (dir.rfind("checkpoint-", 0) == 0 &&
      (name == "model.safetensors" || name == "pytorch_model.bin" ||
       name.rfind("adapter_model.", 0) == 0))
    return SetRole::kMember;
  return SetRole::kNone;
}

std::string SetDirectoryOf(const std::string& relative) {
  const std::string dir = ParentPath(relative);
  const std::string dir_name = LastComponent(dir);
  static const std::regex rank_dir(R"(mp_rank_[0-9]{2,6}(_[0-9]{3,6})?)");
  if (dir_name == "variables" || std::regex_match(dir_name, rank_dir)) return ParentPath(dir);
  return dir;
}

}  // namespace ckptwatch
