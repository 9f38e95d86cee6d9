#include "verify/sets/trainer_set.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "verify/sets/hf_sharded_set.h"

namespace ckptwatch {
namespace {

// trainer_state.json carries the whole log_history: long runs make it a few MiB.
constexpr std::size_t kMaxStateBytes = 64u << 20;

constexpr const char* kSingleWeights[] = {
    "model.safetensors", "pytorch_model.bin", "adapter_model.safetensors",
    "adapter_model.bin", "tf_model.h5",       "flax_model.msgpack"};

bool IsRngState(const std::string& n) {
  return n.rfind("rng_state", 0) == 0 && n.size() > 4 && n.compare(n.size() - 4, 4, ".pth") == 0;
}

}  // namespace

bool LooksLikeTrainerCheckpoint(const std::string& dir_name,
                                const std::vector<std::string>& names) {
  if (StepFromName(dir_name, "checkpoint-") < 0) return false;
  for (const std::string& n : names)
    if (n == "trainer_state.json" || n == "optimizer.pt" || n == "scheduler.pt" || IsRngState(n) ||
        IsHfIndexName(n))
      return true;
  for (const char* w : kSingleWeights)
    if (Listed(names, w)) return true;
  return false;
}

SetReport CheckTrainerCheckpoint(const SetDir& dir, const std::string& dir_name,
                                 const std::vector<std::string>& names,
                                 const SetCheckOptions& options) {
  SetReport r;
  r.layout = "hf_trainer";
  r.path = dir.path();
  r.dir = dir.path();
  r.step = StepFromName(dir_name, "checkpoint-");
  auto verify = [&](const std::string& name) {
    r.members.push_back(name);
    if (!options.verify_member) return;
    OpenedEntry f = dir.Open(name);
    if (f.kind != EntryKind::kRegular) {
      r.Fail(SetVerdict::kInconsistent, name + " is not a regular file (a symlink is not followed)",
             name);
      return;
    }
    ApplyMemberCheck(options.verify_member(f.fd.get(), dir.Join(name)), name, &r);
  };

  // Weights first: what save_model() writes first.
  bool weights = false;
  for (const std::string& n : names)
    if (IsHfIndexName(n)) {
      weights = true;
      CheckHfSharded(dir, n, options, &r);
    }
  for (const char* w : kSingleWeights)
    if (Listed(names, w)) {
      weights = true;
      if (std::string(w) != "flax_model.msgpack")
        verify(w);
      else
        r.members.push_back(w);
    }
  if (!weights)
    r.Missing(
        "model.safetensors",
        "no model weights (model.safetensors, pytorch_model.bin, a sharded index or an adapter) "
        "in a Trainer checkpoint: save_model() did not finish");
  if (Listed(names, "scheduler.pt") && !Listed(names, "optimizer.pt"))
    r.Missing("optimizer.pt",
              "optimizer.pt is missing while scheduler.pt, written after it, is there");
  for (const char* f : {"optimizer.pt", "scheduler.pt", "scaler.pt"})
    if (Listed(names, f)) verify(f);
  for (const std::string& n : names)
    if (IsRngState(n)) verify(n);
  for (const char* f : {"config.json", "training_args.bin"})
    if (Listed(names, f)) r.members.push_back(f);

  // The commit point, last.
  std::string text, err;
  if (!Listed(names, "trainer_state.json")) {
    r.Missing(
        "trainer_state.json",
        "trainer_state.json is missing: the Trainer writes it last, after the weights, optimizer "
        "and RNG state (the save stopped before its commit point)");
    return r;
  }
  r.members.push_back("trainer_state.json");
  if (!dir.ReadSmall("trainer_state.json", kMaxStateBytes, &text, &err)) {
    r.Fail(SetVerdict::kInconsistent, err, "trainer_state.json");
    return r;
  }
  nlohmann::json state = nlohmann::json::parse(text, nullptr, false);
  if (!state.is_object()) {
    r.Fail(SetVerdict::kIncomplete,
           "trainer_state.json is not whole JSON (cut short while written?)", "trainer_state.json");
    return r;
  }
  if (state.contains("global_step") && state["global_step"].is_number_integer() && r.step >= 0 &&
      state["global_step"].get<std::int64_t>() != r.step)
    r.Fail(SetVerdict::kInconsistent,
           "trainer_state.json says global_step " +
               std::to_string(state["global_step"].get<std::int64_t>()) + ", the directory is " +
               dir_name,
           "trainer_state.json");
  return r;
}

}  // namespace ckptwatch
