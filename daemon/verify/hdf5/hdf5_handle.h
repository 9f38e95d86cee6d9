// RAII for HDF5 identifiers, and the HDF5 error stack turned into a reason.
#pragma once

#include <hdf5.h>

#include <string>

namespace ckptwatch {

/// Owns one HDF5 identifier and closes it with the matching H5*close.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer close) : id_(id), close_(close) {}
  Hid(Hid&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = H5I_INVALID_HID; }
  Hid& operator=(Hid&& other) noexcept;
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() { Reset(); }

  bool valid() const { return id_ >= 0; }
  hid_t get() const { return id_; }
  /// Gives up ownership, for a close whose result matters.
  hid_t release() {
    hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }

 private:
  void Reset();
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

/// The innermost (most specific) HDF5 error on the default stack.
struct Hdf5Error {
  std::string message;     ///< e.g. "truncated file: eof = 2048, … (H5F__super_read)"
  bool truncated = false;  ///< libhdf5 classified it H5E_TRUNCATED.
};

/// Stops libhdf5 printing its error stack to stderr; errors are read with
/// TakeHdf5Error() instead. Idempotent.
void InitHdf5ErrorHandling();
/// Reads and clears the default error stack.
Hdf5Error TakeHdf5Error();

}  // namespace ckptwatch
