// Writing a whole buffer to a descriptor.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace ckptwatch {

/// Writes all `size` bytes of `data` to `fd`, through short writes and EINTR. False when a write
/// failed (errno says why) or wrote nothing.
inline bool WriteAll(int fd, const void* data, std::size_t size) {
  const auto* bytes = static_cast<const char*>(data);
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = write(fd, bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace ckptwatch
