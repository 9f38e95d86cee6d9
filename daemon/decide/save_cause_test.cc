#include "decide/save_cause.h"

#include <gtest/gtest.h>

#include <optional>

namespace ckptwatch {
namespace {

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

VerifyResult Result(Verdict verdict, std::uint64_t bytes, std::optional<std::uint64_t> expected) {
  VerifyResult r;
  r.verdict = verdict;
  r.bytes = bytes;
  r.expected_bytes = expected;
  return r;
}

const std::optional<SpaceThreshold> kNoMinFree;

TEST(SaveCause, TruncatedWithLessFreeThanTheMissingBytesIsDiskFull) {
  // 100 GiB filesystem, 300 MiB free, the file is 500 MiB short.
  const FsSpace space{300 * kMiB, 100 * kGiB};
  const SaveCause cause = ClassifyFailure(Result(Verdict::kTruncated, kGiB, kGiB + 500 * kMiB), space, kNoMinFree);
  EXPECT_EQ(cause.name, "disk_full");
  EXPECT_NE(cause.explanation.find("less than the 500.0 MiB the file is missing"), std::string::npos)
      << cause.explanation;
}

TEST(SaveCause, TruncatedWithRoomForTheMissingBytesIsTruncated) {
  // Free space at detection covers what is missing: the writer died, the disk did not fill.
  const FsSpace space{600 * kMiB, 100 * kGiB};
  const SaveCause cause = ClassifyFailure(Result(Verdict::kTruncated, kGiB, kGiB + 500 * kMiB), space, kNoMinFree);
  EXPECT_EQ(cause.name, "truncated");
  EXPECT_EQ(cause.explanation, "");
  // Exactly as much free as missing: it would have fit.
  const FsSpace exact{500 * kMiB, 100 * kGiB};
  EXPECT_EQ(ClassifyFailure(Result(Verdict::kTruncated, kGiB, kGiB + 500 * kMiB), exact, kNoMinFree).name,
            "truncated");
}

TEST(SaveCause, FreeSpaceBelowMinFreeIsDiskFull) {
  SpaceThreshold min_free;
  min_free.bytes = 2 * kGiB;
  const FsSpace below{2 * kGiB - 1, 100 * kGiB};
  EXPECT_EQ(ClassifyFailure(Result(Verdict::kCorrupt, kGiB, kGiB), below, min_free).name, "disk_full");
  const FsSpace at{2 * kGiB, 100 * kGiB};
  EXPECT_EQ(ClassifyFailure(Result(Verdict::kCorrupt, kGiB, kGiB), at, min_free).name, "corrupt");
}

TEST(SaveCause, NearlyFullFilesystemIsDiskFullForEmptyAndCorruptFiles) {
  // Near zero: below 1 MiB or 0.1 % of the filesystem, whichever is larger.
  const FsSpace small_fs{kMiB - 1, 64 * kMiB};  // 0.1 % is 64 KiB: 1 MiB applies
  EXPECT_EQ(ClassifyFailure(Result(Verdict::kEmpty, 0, std::nullopt), small_fs, kNoMinFree).name, "disk_full");
  const FsSpace small_fs_ok{kMiB, 64 * kMiB};
  EXPECT_EQ(ClassifyFailure(Result(Verdict::kEmpty, 0, std::nullopt), small_fs_ok, kNoMinFree).name, "empty");
  const FsSpace big_fs{1000 * kMiB - 1, 1000 * kGiB};  // 0.1 % is 1000 MiB
  EXPECT_EQ(ClassifyFailure(Result(Verdict::kCorrupt, kGiB, kGiB), big_fs, kNoMinFree).name, "disk_full");
  const FsSpace big_fs_ok{1024 * kMiB, 1000 * kGiB};
  EXPECT_EQ(ClassifyFailure(Result(Verdict::kCorrupt, kGiB, kGiB), big_fs_ok, kNoMinFree).name, "corrupt");
}

TEST(SaveCause, VerdictsThatAreNotAFailedWriteNeverBecomeDiskFull) {
  // A full disk explains a short or unfinished file (h5py leaves in_progress
  // behind when ENOSPC ends the save); not NaN weights or a crashed reader.
  const FsSpace full{0, 100 * kGiB};
  SpaceThreshold min_free;
  min_free.bytes = kGiB;
  for (Verdict v : {Verdict::kOk, Verdict::kNonfinite, Verdict::kNotCheckpoint,
                    Verdict::kTimeout, Verdict::kVerifierCrashed, Verdict::kNotFound,
                    Verdict::kPermissionDenied}) {
    SCOPED_TRACE(VerdictName(v));
    const SaveCause cause = ClassifyFailure(Result(v, 10, 20), full, min_free);
    EXPECT_EQ(cause.name, VerdictName(v));
    EXPECT_EQ(cause.explanation, "");
  }
  for (Verdict v : {Verdict::kTruncated, Verdict::kEmpty, Verdict::kCorrupt, Verdict::kInProgress}) {
    SCOPED_TRACE(VerdictName(v));
    EXPECT_EQ(ClassifyFailure(Result(v, 10, 20), full, kNoMinFree).name, "disk_full");
  }
}

TEST(SaveCause, LowSpaceWarnsBelowOneAndAHalfTheLastGoodCheckpoint) {
  const FsSpace space{3 * kGiB, 100 * kGiB};
  EXPECT_EQ(LowSpaceReason(space, kNoMinFree, 2 * kGiB), "");  // exactly 1.5x: fits
  EXPECT_NE(LowSpaceReason(space, kNoMinFree, 2 * kGiB + 2), "");
  EXPECT_EQ(LowSpaceReason(space, kNoMinFree, 0), "");  // no good checkpoint yet
}

}  // namespace
}  // namespace ckptwatch

namespace ckptwatch {
namespace {

TEST(SaveCause, AnExhaustedQuotaIsDiskFullAndSaysWhose) {
  FsSpace space{0, 100 * (std::uint64_t{1} << 30)};  // what the quota leaves (ApplyOwnerQuota)
  space.quota = "uid 1000's disk quota (2.0 MiB used of 2.0 MiB)";
  VerifyResult r;
  r.verdict = Verdict::kTruncated;
  r.bytes = 1 << 20;
  r.expected_bytes = 3 << 20;
  const SaveCause cause = ClassifyFailure(r, space, std::nullopt);
  EXPECT_EQ(cause.name, "disk_full");
  EXPECT_EQ(cause.explanation.rfind("uid 1000's disk quota (2.0 MiB used of 2.0 MiB): ", 0), 0u)
      << cause.explanation;
}

}  // namespace
}  // namespace ckptwatch
