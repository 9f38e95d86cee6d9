// Bounded, checked reads of a file of known size, for ckptwatch's own format parsers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace ckptwatch {

/// Reads `n` bytes at absolute `offset` into `buf`; returns the bytes read (fewer only
/// at end of file) or -1 with errno set.
using ReadAt = std::function<long(std::uint64_t offset, void* buf, std::size_t n)>;

/// Reads exact byte ranges through a ReadAt. A range past `size()` or a short read (the
/// file shrank while being read) fails with a sentence in `*err`; nothing reads past the end.
class ByteReader {
 public:
  ByteReader(const ReadAt& read_at, std::uint64_t size) : read_at_(read_at), size_(size) {}

  std::uint64_t size() const { return size_; }
  /// Reads `n` bytes at `offset` into `buf`; false with `*err` set when they are not all there.
  bool Read(std::uint64_t offset, void* buf, std::size_t n, std::string* err) const;
  /// Read() into `*out` (resized to `n`).
  bool ReadVector(std::uint64_t offset, std::size_t n, std::vector<std::uint8_t>* out,
                  std::string* err) const;

 private:
  const ReadAt& read_at_;
  std::uint64_t size_;
};

/// A ReadAt that preads the open descriptor `fd` (borrowed).
ReadAt FdReadAt(int fd);
/// A ReadAt that copies from `bytes` (borrowed), a file held in memory.
ReadAt SpanReadAt(std::span<const std::uint8_t> bytes);

/// Little-endian loads from bytes the caller has bounds-checked.
inline std::uint64_t LoadLe(const std::uint8_t* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace ckptwatch
