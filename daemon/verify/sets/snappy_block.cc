#include "verify/sets/snappy_block.h"

#include "verify/sets/tf_table.h"  // ReadVarint

namespace ckptwatch {

bool SnappyUncompress(const std::uint8_t* in, std::size_t n, std::uint64_t max_bytes,
                      std::vector<std::uint8_t>* out, std::string* err) {
  std::size_t pos = 0;
  std::uint64_t length;
  if (!ReadVarint(in, n, &pos, &length) || length > max_bytes)
    return (*err = "a Snappy block's length is malformed or too large", false);
  out->clear();
  out->reserve(static_cast<std::size_t>(length));
  while (pos < n) {
    const std::uint8_t tag = in[pos++];
    std::uint64_t len, offset = 0;
    if ((tag & 3) == 0) {  // literal: length-1 in the tag, or in the 1-4 bytes after it
      len = tag >> 2;
      if (len >= 60) {
        const std::size_t bytes = len - 59;
        if (n - pos < bytes) return (*err = "a Snappy literal is cut short", false);
        len = 0;
        for (std::size_t i = 0; i < bytes; ++i)
          len |= static_cast<std::uint64_t>(in[pos + i]) << (8 * i);
        pos += bytes;
      }
      ++len;
      if (len > n - pos || len > length - out->size())
        return (*err = "a Snappy literal runs past its block", false);
      out->insert(out->end(), in + pos, in + pos + len);
      pos += static_cast<std::size_t>(len);
      continue;
    }
    if ((tag & 3) == 1) {  // copy, 1-byte offset: 4-11 bytes, 11-bit offset
      if (n - pos < 1) return (*err = "a Snappy copy is cut short", false);
      len = ((tag >> 2) & 7) + 4;
      offset = (static_cast<std::uint64_t>(tag >> 5) << 8) | in[pos++];
    } else {  // copy with a 2- or 4-byte little-endian offset: 1-64 bytes
      const std::size_t bytes = (tag & 3) == 2 ? 2 : 4;
      if (n - pos < bytes) return (*err = "a Snappy copy is cut short", false);
      len = (tag >> 2) + 1;
      for (std::size_t i = 0; i < bytes; ++i)
        offset |= static_cast<std::uint64_t>(in[pos + i]) << (8 * i);
      pos += bytes;
    }
    if (offset == 0 || offset > out->size() || len > length - out->size())
      return (*err = "a Snappy copy reaches outside its block", false);
    const std::size_t from = out->size() - static_cast<std::size_t>(offset);
    for (std::uint64_t i = 0; i < len; ++i) out->push_back((*out)[from + i]);  // may overlap itself
  }
  if (out->size() != length)
    return (*err = "a Snappy block holds fewer bytes than its length says", false);
  return true;
}

}  // namespace ckptwatch
