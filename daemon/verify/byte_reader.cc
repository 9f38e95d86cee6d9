#include "verify/byte_reader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace ckptwatch {

bool ByteReader::Read(std::uint64_t offset, void* buf, std::size_t n, std::string* err) const {
  if (offset > size_ || n > size_ - offset) {
    *err = "the file ends at " + std::to_string(size_) + " bytes, before the " +
           std::to_string(n) + " bytes at offset " + std::to_string(offset);
    return false;
  }
  auto* out = static_cast<std::uint8_t*>(buf);
  std::size_t done = 0;
  while (done < n) {
    const long got = read_at_(offset + done, out + done, n - done);
    if (got < 0) {
      *err = "read error at offset " + std::to_string(offset + done) + ": " + std::strerror(errno);
      return false;
    }
    // The size was taken before the read: a file that ends early shrank meanwhile.
    if (got == 0) {
      *err = "the file ended at " + std::to_string(offset + done) + " bytes while being read "
             "(it shrank: rewritten during the check?)";
      return false;
    }
    done += static_cast<std::size_t>(got);
  }
  return true;
}

bool ByteReader::ReadVector(std::uint64_t offset, std::size_t n, std::vector<std::uint8_t>* out,
                            std::string* err) const {
  if (offset > size_ || n > size_ - offset) return Read(offset, nullptr, n, err);
  out->resize(n);
  return Read(offset, out->data(), n, err);
}

ReadAt FdReadAt(int fd) {
  return [fd](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
      errno = EOVERFLOW;
      return -1;
    }
    ssize_t got;
    do got = pread(fd, buf, n, static_cast<off_t>(offset));
    while (got < 0 && errno == EINTR);
    return static_cast<long>(got);
  };
}

ReadAt SpanReadAt(std::span<const std::uint8_t> bytes) {
  return [bytes](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (offset >= bytes.size()) return 0;
    n = static_cast<std::size_t>(std::min<std::uint64_t>(n, bytes.size() - offset));
    std::memcpy(buf, bytes.data() + offset, n);
    return static_cast<long>(n);
  };
}

}  // namespace ckptwatch
