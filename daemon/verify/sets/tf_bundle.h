// TensorFlow tensor bundles: the V2 checkpoint format of tf.train.Saver, tf.train.Checkpoint and
// a SavedModel's variables/.
//
// Saver (tensorflow/core/util/tensor_bundle/tensor_bundle.cc, BundleWriter; MergeBundles): each
// shard writer streams tensors into PREFIX.data-0000i-of-0000N (at a temporary name, renamed at
// Finish()), and the `.index` — a LevelDB-style table (tf_table.h) whose "" key holds a
// BundleHeaderProto {num_shards, endianness, version} and every other key a BundleEntryProto
// {dtype, shape, shard_id, offset, size, crc32c (masked), slices} — is written last, by
// MergeBundles after every shard is renamed: the index is the bundle's commit point. Saver then
// writes PREFIX.meta and updates the `checkpoint` state file (tf_checkpoint_state.h), the
// pointer a resume follows. Entries lie back to back in their shard, so a shard ends exactly
// where its last entry does.
#pragma once

#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"
#include "verify/sets/set_dir.h"

namespace ckptwatch {

/// Checks the bundle whose index is `prefix`.index beneath `dir` (prefix relative, e.g.
/// "model.ckpt" or "variables/variables"): the index reads back; every shard the header counts
/// is there; every entry lies inside its shard, its size matches dtype x shape; no shard has
/// bytes past its last entry; at kFull each entry's CRC-32C matches. Adds members to `report`.
void CheckTfBundle(const SetDir& dir, const std::string& prefix, const SetCheckOptions& options,
                   SetReport* report);

/// The bundles in the directory `sub` ("" or "variables") of `dir`, whose names are `names`:
/// one per PREFIX.index with the table magic, and one (incomplete: no index yet) per prefix
/// that has data shards but no index. Each is a "tf_bundle" set named `dir`/`sub`/PREFIX.
std::vector<SetReport> FindTfBundles(const SetDir& dir, const std::string& sub,
                                     const std::vector<std::string>& names,
                                     const SetCheckOptions& options);

/// "PREFIX.data-00003-of-00008": the shard file name TensorFlow gives shard `i` of `n`.
std::string TfShardName(const std::string& prefix, std::uint64_t i, std::uint64_t n);

}  // namespace ckptwatch
