#include "verify/hdf5/hdf5_handle.h"

#include <vector>

namespace ckptwatch {

Hid& Hid::operator=(Hid&& other) noexcept {
  if (this != &other) {
    Reset();
    id_ = other.id_;
    close_ = other.close_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Hid::Reset() {
  if (id_ >= 0 && close_) close_(id_);
  id_ = H5I_INVALID_HID;
}

void InitHdf5ErrorHandling() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {

struct Frame {
  std::string description;
  std::string function;
  hid_t minor = H5I_INVALID_HID;
};

herr_t CollectFrame(unsigned, const H5E_error2_t* error, void* data) {
  auto* frames = static_cast<std::vector<Frame>*>(data);
  frames->push_back({error->desc ? error->desc : "", error->func_name ? error->func_name : "",
                     error->min_num});
  return 0;
}

std::string MinorMessage(hid_t minor) {
  char text[256] = {};
  H5E_type_t type;
  if (H5Eget_msg(minor, &type, text, sizeof text) < 0) return "";
  return text;
}

}  // namespace

Hdf5Error TakeHdf5Error() {
  std::vector<Frame> frames;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, CollectFrame, &frames);
  H5Eclear2(H5E_DEFAULT);
  Hdf5Error error;
  if (frames.empty()) {
    error.message = "libhdf5 reported an error without details";
    return error;
  }
  for (const Frame& frame : frames)
    if (frame.minor == H5E_TRUNCATED) error.truncated = true;
  // The innermost frame names the actual problem ("truncated file: eof = …",
  // "bad object header version number"); the outer ones say what was attempted.
  const Frame& inner = frames.back();
  error.message = inner.description;
  std::string minor = MinorMessage(inner.minor);
  if (!minor.empty() && minor != inner.description) error.message += " (" + minor + ")";
  if (!inner.function.empty()) error.message += " in " + inner.function;
  return error;
}

}  // namespace ckptwatch
