#include "verify/hdf5/lookup3.h"

#include <bit>
#include <cstddef>

namespace ckptwatch {
namespace {

// Mix and final are Bob Jenkins' lookup3.c (2006, public domain); the shift
// constants are part of the checksum format, so they must not be "tidied".
void Mix(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
  a -= c;
  a ^= std::rotl(c, 4);
  c += b;
  b -= a;
  b ^= std::rotl(a, 6);
  a += c;
  c -= b;
  c ^= std::rotl(b, 8);
  b += a;
  a -= c;
  a ^= std::rotl(c, 16);
  c += b;
  b -= a;
  b ^= std::rotl(a, 19);
  a += c;
  c -= b;
  c ^= std::rotl(b, 4);
  b += a;
}

void Final(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
  c ^= b;
  c -= std::rotl(b, 14);
  a ^= c;
  a -= std::rotl(c, 11);
  b ^= a;
  b -= std::rotl(a, 25);
  c ^= b;
  c -= std::rotl(b, 16);
  a ^= c;
  a -= std::rotl(c, 4);
  b ^= a;
  b -= std::rotl(a, 14);
  c ^= b;
  c -= std::rotl(b, 24);
}

// Little-endian word of up to 4 bytes; missing high bytes count as zero, which is
// what the fall-through switch of the reference tail handling amounts to.
std::uint32_t Word(const std::uint8_t* p, std::size_t n) {
  std::uint32_t w = 0;
  for (std::size_t i = 0; i < n && i < 4; ++i) w |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return w;
}

}  // namespace

std::uint32_t Lookup3(std::span<const std::uint8_t> data, std::uint32_t initval) {
  const std::uint8_t* k = data.data();
  std::size_t length = data.size();
  // The reference truncates the length to 32 bits here; so do we.
  std::uint32_t a = 0xdeadbeef + static_cast<std::uint32_t>(length) + initval;
  std::uint32_t b = a;
  std::uint32_t c = a;

  while (length > 12) {
    a += Word(k, 4);
    b += Word(k + 4, 4);
    c += Word(k + 8, 4);
    Mix(a, b, c);
    length -= 12;
    k += 12;
  }
  // An empty tail skips the final mix: hashlittle("", 0) is 0xdeadbeef.
  if (length == 0) return c;
  a += Word(k, length);
  if (length > 4) b += Word(k + 4, length - 4);
  if (length > 8) c += Word(k + 8, length - 8);
  Final(a, b, c);
  return c;
}

}  // namespace ckptwatch
