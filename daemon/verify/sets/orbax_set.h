// Orbax checkpoints (JAX): one directory per step, SAVE_DIR/<step>/, holding one item per
// subdirectory (CheckpointManager's composite checkpoints: state/, metadata/ ...) or one PyTree
// at the step directory itself (a direct Checkpointer save).
//
// google/orbax checkpoint/orbax/checkpoint (read at 3ff7b24a): every save is written under a
// temporary name, "<step>.orbax-checkpoint-tmp-<n>" (path/atomicity.py, atomicity_types.py
// TMP_DIR_SUFFIX), which the daemon excludes; finalize writes _CHECKPOINT_METADATA (JSON:
// item_handlers, commit_timestamp_nsecs; path/step metadata) and, v1, the empty marker
// orbax.checkpoint, then renames the directory to <step> — the commit point — or, on a
// filesystem without atomic rename (GCS), writes commit_success.txt instead. A PyTree item
// (handlers/base_pytree_checkpoint_handler.py, tensorstore's OCDBT driver) holds _METADATA
// (the tree; optional), _sharding, array_metadatas/process_<p>, the merged manifest.ocdbt and
// d/ of data files, and one ocdbt.process_<p>/ (manifest.ocdbt, d/) per writing process. Orbax's
// own compatibility checkpoints (experimental/v1/_src/testing/compatibility) call a PyTree
// without manifest.ocdbt or without d/ critical: it does not load.
#pragma once

#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/set_dir.h"

namespace ckptwatch {

/// True when `names` (a directory's files) hold Orbax's step metadata or its v1 marker.
bool LooksLikeOrbax(const std::vector<std::string>& names);

/// Judges the step directory `dir` (named `step_name`): _CHECKPOINT_METADATA, when present, is
/// whole JSON; every PyTree item (the step directory itself, or each subdirectory that holds
/// OCDBT files) has its manifest.ocdbt and d/; the ocdbt.process_<p>/ of processes
/// 0..P-1 are all there, each with its own manifest.ocdbt and d/. The OCDBT manifests' contents
/// (tensorstore's B-tree) are not read.
SetReport CheckOrbax(const SetDir& dir, const std::string& step_name,
                     const std::vector<std::string>& names);

}  // namespace ckptwatch
