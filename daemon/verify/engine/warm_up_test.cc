#include "verify/engine/warm_up.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include <gtest/gtest.h>

#include "verify/hdf5/hdf5_test_images.h"

namespace ckptwatch {
namespace {

// The warm-up file must walk the paths a Keras checkpoint walks, and get the ok a real one
// gets: a check that came to refuse it would leave every new verifier cold (and say so).
TEST(WarmUpTest, OurOwnKerasFileIsVerifiedOkAtEveryLevelAndLeavesNoHandleOpen) {
  for (Level level : {Level::kStructure, Level::kFull}) {
    VerifyOptions options;
    options.level = level;
    std::string error;
    EXPECT_TRUE(WarmUp(options, &error)) << error;
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
  }
}

// The zygote's children inherit it: nobody may change what they verify.
TEST(WarmUpTest, TheWarmUpFileIsASealedReadOnlyMemfdAboveAChildsDescriptors) {
  std::string error;
  const int fd = WarmUpFd(&error);
  ASSERT_GE(fd, kWarmUpFdMin) << error;
  EXPECT_TRUE(HasWarmUpFd());
  EXPECT_EQ(WarmUpFd(&error), fd) << "made once";
  EXPECT_EQ(fcntl(fd, F_GET_SEALS) & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL),
            F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  EXPECT_EQ(pwrite(fd, "x", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  std::vector<std::uint8_t> head(8);
  ASSERT_EQ(pread(fd, head.data(), head.size(), 0), 8);
  EXPECT_TRUE(std::equal(head.begin(), head.end(), WarmUpImage().begin()));
}

TEST(WarmUpTest, TheImageIsAKerasFullModelWithItsWeights) {
  const std::vector<std::uint8_t>& image = WarmUpImage();
  ASSERT_FALSE(image.empty());
  EXPECT_EQ(&image, &WarmUpImage()) << "built once per process";
  const Hdf5Inspection inspection = hdf5_images::Inspect(image, Level::kFull);
  EXPECT_EQ(inspection.verdict, Verdict::kOk) << inspection.reason;
  EXPECT_EQ(inspection.datasets, 4u);
  EXPECT_EQ(inspection.parameters, 16u * 32 + 32 + 32u * 10 + 10);
  EXPECT_EQ(inspection.keras.kind, "full_model");
  EXPECT_EQ(inspection.keras.version, "2.4.0");
  EXPECT_EQ(inspection.keras.builtin_classes,
            (std::vector<std::string>{"Dense", "InputLayer", "Sequential"}));
}

}  // namespace
}  // namespace ckptwatch
