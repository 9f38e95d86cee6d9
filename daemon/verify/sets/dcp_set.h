// PyTorch Distributed Checkpoint (DCP) directories.
//
// torch 1.13 (torch/distributed/_shard/checkpoint/state_dict_saver.py save_state_dict,
// filesystem.py FileSystemWriter): every rank writes its items to files named
// __<rank>_<n>.distcp (1.13: one file per item, each a torch.save archive; torch >= 2.0,
// torch/distributed/checkpoint/filesystem.py: one file per rank or writer thread, items back to
// back), then the coordinator gathers every rank's WriteResults and writes `.metadata` — a pickle
// of Metadata(state_dict_metadata, planner_data, storage_data), storage_data mapping each
// MetadataIndex(fqn, offset, index) to _StorageInfo(relative_path, offset, length) — to
// `.metadata.tmp`, then renames it: `.metadata` is the commit point, and the only record of
// which bytes of which file hold which tensor.
#pragma once

#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/set_dir.h"

namespace ckptwatch {

/// True when `names` hold `.metadata` or a *.distcp file.
bool LooksLikeDcp(const std::vector<std::string>& names);

/// Judges the DCP checkpoint in `dir`: `.metadata` is there and reads back (a bounded pickle
/// read, nothing imported); every file it names is there and holds every range it names. A file
/// shorter than its ranges is truncated (incomplete) unless it ends like a whole torch.save
/// archive, in which case the metadata and the file disagree (inconsistent).
SetReport CheckDcp(const SetDir& dir, const std::vector<std::string>& names,
                   const SetCheckOptions& options);

}  // namespace ckptwatch
