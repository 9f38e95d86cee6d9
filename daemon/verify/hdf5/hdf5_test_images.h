// Test helpers for the HDF5 tests: files libhdf5 writes into memory (the core driver),
// inspected as images, so the tests cost no disk I/O; and the 16-bit float types h5py writes.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "verify/hdf5/hdf5_inspector.h"

namespace ckptwatch::hdf5_images {

// A file libhdf5 creates in memory, `fill` writes into and the test gets as its image.
inline std::vector<std::uint8_t> ImageOf(const std::function<void(hid_t file)>& fill) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_core(fapl, 1 << 20, /*backing_store=*/false);
  static int serial = 0;
  const std::string name = "inspector_test_" + std::to_string(++serial) + ".h5";
  hid_t file = H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  fill(file);
  H5Fflush(file, H5F_SCOPE_GLOBAL);
  const ssize_t size = H5Fget_file_image(file, nullptr, 0);
  std::vector<std::uint8_t> image(size > 0 ? static_cast<std::size_t>(size) : 0);
  EXPECT_EQ(H5Fget_file_image(file, image.data(), image.size()), size);
  H5Fclose(file);
  H5Pclose(fapl);
  return image;
}

// `direct`: unfiltered floats are read straight from the image (the default), or all through
// libhdf5. A libhdf5-written image ends at its end of allocation.
inline Hdf5Inspection Inspect(const std::vector<std::uint8_t>& image, Level level,
                              std::uint64_t file_size, bool direct = true) {
  Hdf5Source source;
  source.image = image;
  source.file_size = file_size;
  source.end_of_allocation = image.size();
  source.direct_reads = direct;
  return InspectHdf5(source, level);
}

inline Hdf5Inspection Inspect(const std::vector<std::uint8_t>& image, Level level) {
  return Inspect(image, level, image.size());
}

inline hid_t MakeFloat16() {  // as h5py's float16 (numpy.float16)
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}
inline hid_t MakeBfloat16() {  // as ml_dtypes' bfloat16 stored by h5py: the top half of a float32
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 7, 8, 0, 7);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 127);
  return t;
}

}  // namespace ckptwatch::hdf5_images
