// Finding checkpoint sets by their content: each directory is offered to every layout
// (dcp_set.h, trainer_set.h, tf_saved_model.h, megatron_set.h, deepspeed_set.h, tf_bundle.h,
// hf_sharded_set.h), and the resume pointers beside them are noted (resume_pointer.h).
// Recognising is cheap (names, a table's magic); judging a set reads its members, so it is
// deferred to SetCandidate::Check(), which `latest` calls newest first and stops at the first ok.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/resume_pointer.h"

namespace ckptwatch {

/// A set recognised, not yet judged.
class SetCandidate {
 public:
  SetCandidate(std::string path, std::string layout, std::string dir, std::int64_t mtime_ns,
               std::int64_t step, std::function<SetReport()> judge);
  const std::string& path() const { return path_; }
  const std::string& layout() const { return layout_; }
  const std::string& dir() const { return dir_; }      ///< Where the set's members live.
  std::int64_t mtime_ns() const { return mtime_ns_; }  ///< Of its commit point (or its directory).
  std::int64_t step() const { return step_; }
  /// Judges the set once (later calls return the same report).
  const SetReport& Check() const;

 private:
  std::string path_, layout_, dir_;
  std::int64_t mtime_ns_, step_;
  std::function<SetReport()> judge_;
  mutable std::shared_ptr<SetReport> report_;
};

struct FoundSets {
  std::vector<SetCandidate> sets;
  std::vector<ResumePointer> pointers;
  std::vector<std::string> dirs;  ///< Every directory examined.
  SetCheckOptions options;        ///< What they were found with (for pointers' targets).
};

/// The sets in and around `path`. A directory: the sets it is or holds, and those of its
/// subdirectories (one level, or every level when `recursive`; at most 10,000 directories;
/// a subdirectory that is a symlink is not entered). A file: the sets of its directory.
/// `depth`, when given, overrides how many levels of subdirectories are examined (0: `path`'s
/// directory alone — what the daemon asks when one directory's save settled).
FoundSets FindSets(const std::string& path, bool recursive, const SetCheckOptions& options,
                   std::string* err, std::optional<int> depth = std::nullopt);

/// The daemon's: the sets of the directory `relative` below the watch root `root_fd` (named
/// `root_path` in reports; "" for the root itself), that directory alone, reached beneath the
/// root without following a symlink (a name in a watch is hostile). Its parent's pointers
/// (DeepSpeed's `latest`, Megatron's tracker) are read when it is below the root. `depth`
/// levels of its subdirectories are examined too (0: that directory alone).
FoundSets FindSetsBeneath(int root_fd, const std::string& root_path, const std::string& relative,
                          const SetCheckOptions& options, std::string* err, int depth = 0);

/// Judges every pointer in `found`: the set it names (its Check(); a directory not among
/// found.sets is recognised on demand), and when that is not ok, the newest complete set in
/// the same directory as the target (found.sets).
std::vector<PointerReport> JudgePointers(const FoundSets& found);

/// Newest first: by commit-point time, then by step.
void SortNewestFirst(std::vector<const SetCandidate*>* sets);

}  // namespace ckptwatch
