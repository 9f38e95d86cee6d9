// Which file names take part in a checkpoint set, and which of them is a commit point: what the
// daemon needs to know from a write event alone, before anything is read. The layouts' headers
// (tf_bundle.h, dcp_set.h, ...) say where each name comes from.
#pragma once

#include <string>
#include <string_view>

namespace ckptwatch {

enum class SetRole {
  kNone,         ///< Not a set's file (or a single-file checkpoint).
  kMember,       ///< A member: a shard, a .distcp, optimizer.pt, mp_rank_XX_model_states.pt...
  kCommitPoint,  ///< Written last: .metadata, *.index, saved_model.pb, an HF index,
                 ///< trainer_state.json, `latest`, latest_checkpointed_iteration.txt, `checkpoint`.
};

/// True when `name` is `suffix` after a non-empty stem: "model.weights.json" ends with
/// ".weights.json", ".weights.json" alone does not.
inline bool HasStemAndSuffix(std::string_view name, std::string_view suffix) {
  return name.size() > suffix.size() && name.ends_with(suffix);
}

/// True when `name`, as a set's index or pointer writes it, names an entry beside that file: one
/// path component, not "." or "..", nothing that leaves the directory.
inline bool IsOneComponent(std::string_view name) {
  return !name.empty() && name.find('/') == std::string_view::npos && name != "." && name != "..";
}

/// The role of the file `relative` (a path below a watch root; only its last components count).
SetRole SetRoleOf(const std::string& relative);

/// The directory whose sets a write to `relative` concerns, relative like it ("" for the root):
/// the file's own directory; for a SavedModel's variables/ and Megatron's mp_rank_XX/, the
/// directory above; for a pointer (latest, latest_checkpointed_iteration.txt), the pointer's
/// directory (the set it names is found from there).
std::string SetDirectoryOf(const std::string& relative);

}  // namespace ckptwatch
