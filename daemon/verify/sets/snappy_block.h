// Decompressing one Snappy-compressed block of a LevelDB-style table (type 1 in the block
// trailer): TensorFlow's table writer compresses blocks with Snappy when that saves more than
// 1/8 (tensorflow/core/lib/io/table_builder.cc WriteBlock; table_options.h defaults to
// kSnappyCompression), so a bundle's .index may hold such blocks. The format
// (google/snappy format_description.txt): a varint of the uncompressed length, then literals and
// back-references; every length and offset is checked, the output capped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ckptwatch {

/// Decompresses `n` bytes at `in` into `*out`; false with `*err` when malformed or when the
/// uncompressed length exceeds `max_bytes`.
bool SnappyUncompress(const std::uint8_t* in, std::size_t n, std::uint64_t max_bytes,
                      std::vector<std::uint8_t>* out, std::string* err);

}  // namespace ckptwatch
