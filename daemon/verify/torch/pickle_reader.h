// Reading a PyTorch pickle without executing it: an opcode reader that only collects what a
// checkpoint check needs (the storages tensors live in, which of them hold model weights, the
// classes a load would import).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "verify/byte_reader.h"  // ReadAt

namespace ckptwatch {

/// One storage a persistent id names: ('storage', torch.FloatStorage, key, location, numel).
struct PickleStorage {
  std::string key;         ///< The zip's data/<key>, or the legacy file's storage key.
  std::string type;        ///< "FloatStorage", "BFloat16Storage", "UntypedStorage", ...
  std::uint64_t numel = 0; ///< Elements of `type` (bytes for UntypedStorage).
  bool weight = false;     ///< Reached from the root other than through training bookkeeping.
};

/// One object of a class the caller asked ReadPickle() for (a DCP `.metadata`'s _StorageInfo):
/// the string and integer fields of its state dict, in the order they were set.
struct PickleRecord {
  std::string cls;  ///< "module.name" of its class.
  std::vector<std::pair<std::string, std::string>> strings;
  std::vector<std::pair<std::string, std::uint64_t>> ints;  ///< Non-negative ints below 2^63.
};

/// What one pickle holds, as far as a checkpoint check cares.
struct PickleSummary {
  enum class Status { kOk, kTruncated, kMalformed, kTooLarge };
  Status status = Status::kMalformed;
  std::string error;          ///< Why, when not kOk.
  std::uint64_t end = 0;      ///< Offset just past its STOP opcode.
  int protocol = 0;           ///< From PROTO, 0 or 1 when absent (text opcodes).
  std::vector<PickleStorage> storages;  ///< Unique by key, in order of first use.
  std::uint64_t tensors = 0;  ///< torch._utils._rebuild_tensor* calls.
  /// PERSID opcodes: persistent ids as text lines, what protocol 0 writes (str of torch's
  /// storage tuple), which torch.load's persistent_load refuses (AssertionError).
  std::uint64_t text_persistent_ids = 0;
  /// "module.name" of every global it imports that is not torch's, Python's own or a
  /// TorchScript class: a load needs that code (torch.load(weights_only=True) refuses it).
  std::vector<std::string> foreign_globals;
  bool root_is_torch_magic = false;  ///< The whole pickle is the legacy format's magic number.
  std::int64_t root_int = -1;        ///< The root when it is a small non-negative integer.
  std::vector<std::string> root_strings;  ///< The root's strings when it is a list or tuple.
  /// Objects whose class name is one of the `record_classes` given, in the order they were built.
  std::vector<PickleRecord> records;
};

/// Limits on what a hostile pickle can make the reader hold.
struct PickleLimits {
  std::uint64_t memory_bytes = 512u << 20;  ///< Strings, containers, memo and stack, approximately.
  /// The largest memo CPython's unpickler may need: a PUT, BINPUT, LONG_BINPUT or MEMOIZE at
  /// index i at or past its memo's size (32 at first) grows it to 2 x i pointers, all written
  /// (Modules/_pickle.c, _Unpickler_MemoPut). An index whose memo exceeds this (16 x i bytes >
  /// memo_bytes: i > 2^26 at 1 GiB) makes the pickle kMalformed: LONG_BINPUT 0x7fffffff asks for
  /// 32 GiB and fails with MemoryError. Picklers number entries from 0, and the skeleton's
  /// memory_bytes stops a pickle with millions of entries first, so only a crafted index gets here.
  std::uint64_t memo_bytes = 1u << 30;
};

/// Reads the pickle that starts at `offset` and may extend to `end`, through `read_at`,
/// interpreting opcodes (protocols 0-5) only to build a bounded skeleton of the objects; nothing
/// is imported or called. Storages reached only through the keys of training bookkeeping
/// (callbacks, loops, optimizer and scheduler state: where Lightning keeps kth_value = inf) are
/// not weights. Objects of a class whose name (after the module) is in `record_classes` come back
/// in `records`.
PickleSummary ReadPickle(const ReadAt& read_at, std::uint64_t offset, std::uint64_t end,
                         const PickleLimits& limits = {}, const std::vector<std::string>& record_classes = {});

/// Bytes per element of a torch storage type name ("FloatStorage" 4), 0 when unknown.
std::size_t StorageElementSize(const std::string& type);

}  // namespace ckptwatch
