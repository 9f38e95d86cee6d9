#include "verify/sets/tf_table.h"

#include "verify/byte_reader.h"
#include "verify/sets/crc32c.h"
#include "verify/sets/snappy_block.h"

namespace ckptwatch {
namespace {

constexpr std::uint64_t kTableMagic = 0xdb4775248b80fb57ull;
constexpr std::size_t kFooterBytes = 48;
constexpr std::size_t kBlockTrailerBytes = 5;  // type byte + masked CRC-32C
// A table block is ~4 KiB by default (table_options.h block_size); a bundle index of a large
// model stays far below this, and a hostile handle cannot make us allocate more.
constexpr std::uint64_t kMaxBlockBytes = 64u << 20;

struct Handle {
  std::uint64_t offset = 0, size = 0;
};

bool DecodeHandle(const std::uint8_t* p, std::size_t n, std::size_t* pos, Handle* h) {
  return ReadVarint(p, n, pos, &h->offset) && ReadVarint(p, n, pos, &h->size);
}

bool ReadBlock(const ByteReader& file, const Handle& h, const char* what,
               std::vector<std::uint8_t>* out, std::string* err) {
  if (h.size > kMaxBlockBytes || h.offset > file.size() ||
      h.size + kBlockTrailerBytes > file.size() - h.offset) {
    *err = std::string("its ") + what + " block (offset " + std::to_string(h.offset) + ", " +
           std::to_string(h.size) + " bytes) lies past the end of the file (" +
           std::to_string(file.size()) + " bytes)";
    return false;
  }
  if (!file.ReadVector(h.offset, static_cast<std::size_t>(h.size) + kBlockTrailerBytes, out, err))
    return false;
  const std::uint8_t type = (*out)[h.size];
  const auto stored = static_cast<std::uint32_t>(LoadLe(out->data() + h.size + 1, 4));
  if (Crc32cMask(Crc32cExtend(0, out->data(), h.size + 1)) != stored) {
    *err = std::string("its ") + what + " block at offset " + std::to_string(h.offset) +
           " fails its CRC-32C";
    return false;
  }
  if (type == 1) {  // Snappy (kSnappyCompression), TensorFlow's default for tables
    std::vector<std::uint8_t> plain;
    std::string why;
    if (!SnappyUncompress(out->data(), static_cast<std::size_t>(h.size), kMaxBlockBytes, &plain,
                          &why)) {
      *err =
          std::string("its ") + what + " block at offset " + std::to_string(h.offset) + ": " + why;
      return false;
    }
    *out = std::move(plain);
    return true;
  }
  if (type != 0) {
    *err = std::string("its ") + what + " block at offset " + std::to_string(h.offset) +
           " has compression type " + std::to_string(type) +
           ", which TensorFlow's tables do not write";
    return false;
  }
  out->resize(h.size);
  return true;
}

// Entries of one block (leveldb/table/block.cc): shared, non_shared, value_length varints, the
// key's new suffix, the value; then restart offsets and their count.
bool ParseBlock(const std::vector<std::uint8_t>& block, const TableLimits& limits,
                std::uint64_t* held, std::vector<TableEntry>* out, std::string* err) {
  if (block.size() < 4) return (*err = "a block is shorter than its restart count", false);
  const std::uint64_t restarts = LoadLe(block.data() + block.size() - 4, 4);
  if (restarts > (block.size() - 4) / 4)
    return (*err = "a block's restart array is larger than the block", false);
  const std::size_t limit = block.size() - 4 - static_cast<std::size_t>(restarts) * 4;
  std::size_t pos = 0;
  std::string key;
  while (pos < limit) {
    std::uint64_t shared, non_shared, value_len;
    if (!ReadVarint(block.data(), limit, &pos, &shared) ||
        !ReadVarint(block.data(), limit, &pos, &non_shared) ||
        !ReadVarint(block.data(), limit, &pos, &value_len) || shared > key.size() ||
        non_shared > limit - pos || value_len > limit - pos - non_shared)
      return (*err = "a block holds a malformed entry at offset " + std::to_string(pos), false);
    key.resize(static_cast<std::size_t>(shared));
    key.append(reinterpret_cast<const char*>(block.data() + pos),
               static_cast<std::size_t>(non_shared));
    pos += static_cast<std::size_t>(non_shared);
    *held += key.size() + value_len;
    if (*held > limits.max_bytes || out->size() >= limits.max_entries)
      return (*err = "it holds more entries than the verifier reads (" +
                     std::to_string(out->size()) + ")",
              false);
    out->push_back({key, std::string(reinterpret_cast<const char*>(block.data() + pos),
                                     static_cast<std::size_t>(value_len))});
    pos += static_cast<std::size_t>(value_len);
  }
  return true;
}

}  // namespace

bool ReadVarint(const std::uint8_t* data, std::size_t n, std::size_t* pos, std::uint64_t* value) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= n) return false;
    const std::uint8_t b = data[(*pos)++];
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *value = v;
      return true;
    }
  }
  return false;
}

bool HasTableMagic(const ReadAt& read_at, std::uint64_t size) {
  if (size < kFooterBytes) return false;
  std::uint8_t magic[8];
  std::string err;
  return ByteReader(read_at, size).Read(size - 8, magic, 8, &err) &&
         LoadLe(magic, 8) == kTableMagic;
}

bool ReadTable(const ReadAt& read_at, std::uint64_t size, std::vector<TableEntry>* out,
               std::string* err, const TableLimits& limits) {
  out->clear();
  ByteReader file(read_at, size);
  if (size < kFooterBytes)
    return (*err = "it is " + std::to_string(size) + " bytes, shorter than a table's footer",
            false);
  std::uint8_t footer[kFooterBytes];
  if (!file.Read(size - kFooterBytes, footer, kFooterBytes, err)) return false;
  if (LoadLe(footer + 40, 8) != kTableMagic)
    return (*err = "it does not end in the table magic 57fb808b247547db", false);
  std::size_t pos = 0;
  Handle meta, index;
  if (!DecodeHandle(footer, 40, &pos, &meta) || !DecodeHandle(footer, 40, &pos, &index))
    return (*err = "its footer's block handles are malformed", false);
  std::vector<std::uint8_t> block;
  if (!ReadBlock(file, index, "index", &block, err)) return false;
  std::vector<TableEntry> handles;
  std::uint64_t held = 0;
  if (!ParseBlock(block, limits, &held, &handles, err)) return false;
  held = 0;
  for (const TableEntry& h : handles) {
    Handle data;
    std::size_t hp = 0;
    const auto* p = reinterpret_cast<const std::uint8_t*>(h.value.data());
    if (!DecodeHandle(p, h.value.size(), &hp, &data))
      return (*err = "its index names a malformed block handle", false);
    if (!ReadBlock(file, data, "data", &block, err) || !ParseBlock(block, limits, &held, out, err))
      return false;
  }
  return true;
}

}  // namespace ckptwatch
