#include "verify/hdf5/hdf5_fd_driver.h"

#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include <gtest/gtest.h>

#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "verify/hdf5/hdf5_handle.h"

namespace ckptwatch {
namespace {

// Writes a small file with libhdf5's default (sec2) driver.
void WriteDataset(const std::string& path, const std::vector<float>& values) {
  Hid file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  hsize_t dims[1] = {values.size()};
  Hid space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  Hid dataset(H5Dcreate2(file.get(), "w", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT),
              H5Dclose);
  H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
}

// `*error` gets the error of a failed open (before the next API call clears it).
Hid OpenThroughFd(int fd, unsigned flags = H5F_ACC_RDONLY, Hdf5Error* error = nullptr) {
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_file_locking(fapl.get(), false, true);
  EXPECT_TRUE(SetFdDriver(fapl.get(), fd));
  Hid file(H5Fopen("label-only", flags, fapl.get()), H5Fclose);
  if (!file.valid() && error) *error = TakeHdf5Error();
  return file;
}

TEST(Hdf5FdDriver, ReadsTheFileBehindTheDescriptorNotTheName) {
  InitHdf5ErrorHandling();
  testing::TempDir dir;
  std::vector<float> values(5000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f;
  WriteDataset(dir / "a.h5", values);
  UniqueFd fd(open((dir / "a.h5").c_str(), O_RDONLY | O_CLOEXEC));
  // The name passed to H5Fopen does not exist: only the descriptor is read.
  Hid file = OpenThroughFd(fd.get());
  ASSERT_TRUE(file.valid()) << TakeHdf5Error().message;
  Hid dataset(H5Dopen2(file.get(), "w", H5P_DEFAULT), H5Dclose);
  std::vector<float> back(values.size());
  ASSERT_GE(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back.data()), 0);
  EXPECT_EQ(back, values);
  dataset = Hid();
  EXPECT_GE(H5Fclose(file.release()), 0);
  // Borrowed: still open after libhdf5 is done.
  EXPECT_NE(fcntl(fd.get(), F_GETFD), -1);
}

TEST(Hdf5FdDriver, RefusesToOpenForWriting) {
  InitHdf5ErrorHandling();
  testing::TempDir dir;
  WriteDataset(dir / "a.h5", {1, 2, 3});
  UniqueFd fd(open((dir / "a.h5").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_FALSE(OpenThroughFd(fd.get(), H5F_ACC_RDWR).valid());
  TakeHdf5Error();
}

TEST(Hdf5FdDriver, ATruncatedFileIsReportedAsTruncated) {
  InitHdf5ErrorHandling();
  testing::TempDir dir;
  WriteDataset(dir / "a.h5", std::vector<float>(20000, 1.0f));
  ASSERT_EQ(truncate((dir / "a.h5").c_str(), 40000), 0);
  UniqueFd fd(open((dir / "a.h5").c_str(), O_RDONLY | O_CLOEXEC));
  Hdf5Error error;
  EXPECT_FALSE(OpenThroughFd(fd.get(), H5F_ACC_RDONLY, &error).valid());
  EXPECT_TRUE(error.truncated) << error.message;
}

}  // namespace
}  // namespace ckptwatch
