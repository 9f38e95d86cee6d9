// A bounded reader of the LevelDB-style sorted table TensorFlow writes as a tensor bundle's
// `.index` and as a V1 checkpoint (tensorflow/core/lib/io/table_builder.cc, format.cc: data
// blocks of prefix-compressed entries with a restart array, each followed by a type byte (0 plain,
// 1 Snappy: snappy_block.h) and a masked CRC-32C; an index block; a 48-byte footer ending in the
// magic 0xdb4775248b80fb57). Every length is checked against the file and against caps: the bytes
// are hostile.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "verify/hdf5/superblock.h"  // ReadAt

namespace ckptwatch {

struct TableEntry {
  std::string key;
  std::string value;
};

/// Caps on what a table can make the reader hold.
struct TableLimits {
  std::uint64_t max_bytes = 256u << 20;  ///< Keys and values together.
  std::uint64_t max_entries = 4u << 20;
};

/// True when the file of `size` bytes ends in the table magic.
bool HasTableMagic(const ReadAt& read_at, std::uint64_t size);

/// Reads every entry of the table in key order into `*out`, checking each block's CRC.
/// False with a sentence in `*err` (too short, no magic, a handle past the end, a bad CRC,
/// a block compressed other than with Snappy, a malformed entry, over a cap).
bool ReadTable(const ReadAt& read_at, std::uint64_t size, std::vector<TableEntry>* out,
               std::string* err, const TableLimits& limits = {});

/// Protobuf varint at `*pos` in [data, data+n); false when malformed or cut short.
bool ReadVarint(const std::uint8_t* data, std::size_t n, std::size_t* pos, std::uint64_t* value);

}  // namespace ckptwatch
