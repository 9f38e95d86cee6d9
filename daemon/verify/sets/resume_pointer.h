// Resume pointers: the small files a trainer reads to find the checkpoint to resume from —
// DeepSpeed's SAVE_DIR/latest (a tag), Megatron's latest_checkpointed_iteration.txt (an
// iteration), TensorFlow's `checkpoint` state file (model_checkpoint_path: a prefix), and
// `last.ckpt` / `LATEST` / `latest` symlinks. Each is written after the save it names (the
// commit point of DeepSpeed and Megatron); one that names a save that is missing, incomplete or
// inconsistent sends the next resume to a failure or a partial checkpoint.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "verify/sets/set_dir.h"

namespace ckptwatch {

/// A pointer found, and what it names.
struct ResumePointer {
  std::string path;  ///< The pointer file.
  std::string kind;  ///< "deepspeed_latest", "megatron_tracker", "tf_checkpoint_state", "symlink".
  std::string target;    ///< The set (directory, prefix or file) it names, as a path.
  std::string text;      ///< What it says (tag, iteration, prefix, link text), for messages.
  bool outside = false;  ///< It names something outside its directory (absolute path, a link out).
  /// For a target inside: the directory it was found in and the target relative to it, which
  /// JudgePointers() resolves beneath that directory without following a symlink. Nothing
  /// outside is ever looked at, not even whether it exists.
  std::shared_ptr<const SetDir> dir;
  std::string relative;
};

/// The pointers among `names` in `dir`. Contents read with a cap of 64 KiB; a symlink is
/// resolved within `dir` only (never followed out). An absolute path naming `dir` itself (TF's
/// Saver writes them) is taken as the name beside it.
std::vector<ResumePointer> FindResumePointers(const std::shared_ptr<const SetDir>& dir,
                                              const std::vector<std::string>& names);

/// model_checkpoint_path from the text of a TF `checkpoint` state file (CheckpointState in
/// text format); empty when there is none.
std::string TfCheckpointStatePath(const std::string& text);

/// What a pointer's target turned out to be, and what to tell the user.
struct PointerReport {
  std::string path, kind, target;
  std::string verdict;        ///< "ok", "missing", "incomplete", "inconsistent", "unrecognized".
  std::string reason;         ///< One line; empty when ok.
  std::string last_complete;  ///< The newest complete set beside the target, "" if none.
};

}  // namespace ckptwatch
