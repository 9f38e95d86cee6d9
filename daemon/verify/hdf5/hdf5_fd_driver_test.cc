#include "verify/hdf5/hdf5_fd_driver.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

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

// A file of `groups` groups of two small datasets with an attribute each, as Keras lays out
// layers: its metadata is many small objects.
void WriteLayers(const std::string& path, int groups) {
  Hid file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  hsize_t dims[1] = {16};
  Hid space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  Hid scalar(H5Screate(H5S_SCALAR), H5Sclose);
  const std::vector<float> values(16, 0.25f);
  for (int g = 0; g < groups; ++g) {
    const std::string name = "layer_" + std::to_string(g);
    Hid group(H5Gcreate2(file.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Gclose);
    for (const char* leaf : {"kernel:0", "bias:0"}) {
      Hid dataset(H5Dcreate2(group.get(), leaf, H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                             H5P_DEFAULT, H5P_DEFAULT),
                  H5Dclose);
      H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
      Hid attribute(
          H5Acreate2(dataset.get(), "step", H5T_STD_I64LE, scalar.get(), H5P_DEFAULT, H5P_DEFAULT),
          H5Aclose);
      const long long step = g;
      H5Awrite(attribute.get(), H5T_NATIVE_LLONG, &step);
    }
  }
}

TEST(Hdf5FdDriver, ASmallFilesMetadataTakesAFewReadsNotOnePerObject) {
  InitHdf5ErrorHandling();
  testing::TempDir dir;
  WriteLayers(dir / "layers.h5", 8);
  UniqueFd fd(open((dir / "layers.h5").c_str(), O_RDONLY | O_CLOEXEC));
  const std::uint64_t before = FdDriverPreads();
  Hid file = OpenThroughFd(fd.get());
  ASSERT_TRUE(file.valid()) << TakeHdf5Error().message;
  struct Seen {
    int objects = 0;
    hsize_t attributes = 0;
  } seen;
  auto visit = [](hid_t, const char*, const H5O_info_t* info, void* data) -> herr_t {
    auto* s = static_cast<Seen*>(data);
    ++s->objects;
    s->attributes += info->num_attrs;
    return 0;
  };
  ASSERT_GE(H5Ovisit2(file.get(), H5_INDEX_NAME, H5_ITER_NATIVE, visit, &seen, H5O_INFO_ALL), 0);
  EXPECT_EQ(seen.objects, 1 + 8 * 3);  // the root, 8 groups, 16 datasets
  EXPECT_EQ(seen.attributes, 16u);
  EXPECT_GE(H5Fclose(file.release()), 0);
  // One pread per metadata object was 55 here (the superblock, each group's header,
  // B-tree, symbol table node and local heap, each dataset's header).
  EXPECT_LE(FdDriverPreads() - before, 4u) << FdDriverPreads() - before;
}

// The bytes of a file of `size` bytes, each byte a function of its offset.
std::vector<std::uint8_t> Pattern(std::size_t size) {
  std::vector<std::uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<std::uint8_t>((i * 7 + i / 251) & 0xff);
  return bytes;
}

TEST(Hdf5FdDriver, ReadsServedFromWindowsAreTheFilesBytesAndZerosPastItsEnd) {
  InitHdf5ErrorHandling();
  testing::TempDir dir;
  const std::vector<std::uint8_t> bytes = Pattern(100000);  // 3 windows of 32 KiB and a part
  {
    UniqueFd out(open((dir / "raw").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_EQ(write(out.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  UniqueFd fd(open((dir / "raw").c_str(), O_RDONLY | O_CLOEXEC));
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  ASSERT_TRUE(SetFdDriver(fapl.get(), fd.get()));
  H5FD_t* driver = H5FDopen("label-only", H5F_ACC_RDONLY, fapl.get(), (haddr_t{1} << 63) - 1);
  ASSERT_NE(driver, nullptr);
  ASSERT_GE(H5FDset_eoa(driver, H5FD_MEM_OHDR, 200000), 0);
  struct Case {
    H5FD_mem_t type;
    haddr_t address;
    std::size_t size;
  };
  const Case cases[] = {
      {H5FD_MEM_SUPER, 0, 8},          {H5FD_MEM_OHDR, 40, 4000},
      {H5FD_MEM_BTREE, 32760, 16},     // across a window boundary: read directly
      {H5FD_MEM_LHEAP, 32768, 32768},  // a whole window
      {H5FD_MEM_OHDR, 40, 8},          // again, from its window
      {H5FD_MEM_GHEAP, 99990, 20},     // the last 10 bytes, then 10 zeros
      {H5FD_MEM_OHDR, 131072, 64},     // wholly past the end: zeros
      {H5FD_MEM_DRAW, 50000, 40000},   // raw data: read as asked
      {H5FD_MEM_OHDR, 65536 + 5, 100}, {H5FD_MEM_OHDR, 5, 100},  // more windows than kept
      {H5FD_MEM_OHDR, 98304 + 1, 100}, {H5FD_MEM_OHDR, 32768 + 3, 100},
  };
  for (const Case& c : cases) {
    std::vector<std::uint8_t> got(c.size, 0xAA), want(c.size, 0);
    for (std::size_t i = 0; i < c.size; ++i)
      if (c.address + i < bytes.size()) want[i] = bytes[c.address + i];
    ASSERT_GE(H5FDread(driver, c.type, H5P_DEFAULT, c.address, c.size, got.data()), 0) << c.address;
    EXPECT_EQ(got, want) << "at " << c.address << ", " << c.size << " bytes";
  }
  EXPECT_GE(H5FDclose(driver), 0);
}

}  // namespace
}  // namespace ckptwatch
