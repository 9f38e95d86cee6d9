#include "verify/hdf5/superblock.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "verify/hdf5/lookup3.h"

namespace ckptwatch {
namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::uint64_t kUndef = Superblock::kUndefinedAddress;

// The superblock fields a test varies; the rest get the values libhdf5 writes.
struct Fields {
  int version = 0;
  int sizeof_offsets = 8;
  int sizeof_lengths = 8;
  std::uint32_t flags = 0;
  std::uint64_t base = 0;
  std::uint64_t eof = 4096;
  std::uint64_t root = 96;
};

// Little-endian `v` in `width` bytes; kUndef becomes all-0xff as libhdf5 encodes it.
void PutLe(Bytes* out, std::uint64_t v, int width) {
  for (int i = 0; i < width; ++i) {
    out->push_back(v == kUndef ? 0xff : i < 8 ? static_cast<std::uint8_t>(v >> (8 * i)) : 0);
  }
}

Bytes SuperblockBytes(const Fields& f) {
  Bytes b = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  b.push_back(static_cast<std::uint8_t>(f.version));
  const int a = f.sizeof_offsets;
  if (f.version < 2) {
    b.insert(b.end(), {0, 0, 0, 0});  // Free-space, root entry, reserved, shared header.
    b.push_back(static_cast<std::uint8_t>(a));
    b.push_back(static_cast<std::uint8_t>(f.sizeof_lengths));
    b.push_back(0);
    PutLe(&b, 4, 2);   // Group leaf K.
    PutLe(&b, 16, 2);  // Group internal K.
    PutLe(&b, f.flags, 4);
    if (f.version == 1) PutLe(&b, 32, 4);  // Indexed storage K + reserved.
    PutLe(&b, f.base, a);
    PutLe(&b, kUndef, a);  // Free-space info.
    PutLe(&b, f.eof, a);
    PutLe(&b, kUndef, a);            // Driver info block.
    PutLe(&b, 0, f.sizeof_lengths);  // Root entry: link name offset.
    PutLe(&b, f.root, a);
    PutLe(&b, 1, 4);  // Cache type: symbol table.
    PutLe(&b, 0, 4);
    b.insert(b.end(), 16, 0);  // Scratch pad.
  } else {
    b.push_back(static_cast<std::uint8_t>(a));
    b.push_back(static_cast<std::uint8_t>(f.sizeof_lengths));
    b.push_back(static_cast<std::uint8_t>(f.flags));
    PutLe(&b, f.base, a);
    PutLe(&b, kUndef, a);  // Superblock extension.
    PutLe(&b, f.eof, a);
    PutLe(&b, f.root, a);
    PutLe(&b, Lookup3(b), 4);
  }
  return b;
}

// A file of `size` bytes: `user_block` bytes of 'U', the superblock, zeros.
Bytes FileImage(const Fields& f, std::size_t user_block, std::size_t size) {
  Bytes image(user_block, 'U');
  const Bytes sb = SuperblockBytes(f);
  image.insert(image.end(), sb.begin(), sb.end());
  image.resize(std::max(size, image.size()), 0);
  image.resize(size);
  return image;
}

// Serves `image`, then zeros up to `virtual_size` (a sparse file); counts bytes read.
ReadAt MemoryReader(const Bytes& image, std::uint64_t virtual_size, std::uint64_t* bytes_read) {
  return
      [&image, virtual_size, bytes_read](std::uint64_t offset, void* buf, std::size_t n) -> long {
        if (offset >= virtual_size) return 0;
        n = static_cast<std::size_t>(std::min<std::uint64_t>(n, virtual_size - offset));
        auto* out = static_cast<std::uint8_t*>(buf);
        for (std::size_t i = 0; i < n; ++i) {
          out[i] = offset + i < image.size() ? image[static_cast<std::size_t>(offset + i)] : 0;
        }
        if (bytes_read) *bytes_read += n;
        return static_cast<long>(n);
      };
}

HeaderCheck CheckImage(const Bytes& image) {
  return CheckHeader(MemoryReader(image, image.size(), nullptr), image.size());
}

TEST(Lookup3, HashOfEmptyInputIsTheSeedConstant) { EXPECT_EQ(Lookup3({}, 0), 0xdeadbeefu); }

TEST(Lookup3, MatchesBobJenkinsPublishedVectors) {
  const std::string_view text = "Four score and seven years ago";
  const std::span bytes(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  EXPECT_EQ(Lookup3(bytes, 0), 0x17770551u);
  EXPECT_EQ(Lookup3(bytes, 1), 0xcd628161u);
}

// The first 48 bytes of a file h5py 3.7 / libhdf5 1.10.8 wrote with libver="latest".
const Bytes kLibhdf5V3Superblock = {
    0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 0x03, 0x08, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xa0, 0x17, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0xd8, 0x8f, 0x84};

TEST(Lookup3, ReproducesTheChecksumLibhdf5Wrote) {
  EXPECT_EQ(Lookup3(std::span(kLibhdf5V3Superblock).first(44)), 0x848fd814u);
}

TEST(Superblock, ParsesAV3SuperblockWrittenByLibhdf5) {
  Superblock sb;
  std::string err;
  ASSERT_TRUE(ParseSuperblock(kLibhdf5V3Superblock, 0, &sb, &err)) << err;
  EXPECT_EQ(sb.version, 3);
  EXPECT_EQ(sb.sizeof_offsets, 8);
  EXPECT_EQ(sb.sizeof_lengths, 8);
  EXPECT_EQ(sb.base_address, 0u);
  EXPECT_EQ(sb.eof_address, 6048u);
  EXPECT_EQ(sb.root_address, 48u);
  EXPECT_FALSE(sb.open_for_write());
  EXPECT_EQ(sb.ExpectedFileSize(), 6048u);
}

// Bytes 512..607 of a v0 file h5py wrote with userblock_size=512 (6760 bytes in all):
// the stored end-of-file address, 6760, counts the user block.
const Bytes kLibhdf5V0SuperblockAfterUserBlock = {
    0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x08, 0x00,
    0x04, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x68, 0x1a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x60, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x88, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa8, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

TEST(Superblock, ParsesAV0SuperblockWrittenByLibhdf5AfterAUserBlock) {
  Superblock sb;
  std::string err;
  ASSERT_TRUE(ParseSuperblock(kLibhdf5V0SuperblockAfterUserBlock, 512, &sb, &err)) << err;
  EXPECT_EQ(sb.version, 0);
  EXPECT_EQ(sb.base_address, 512u);
  EXPECT_EQ(sb.eof_address, 6760u);
  EXPECT_EQ(sb.root_address, 96u);
  EXPECT_EQ(sb.ExpectedFileSize(), 6760u);

  Bytes image(6760, 0);
  std::fill(image.begin(), image.begin() + 512, 'U');
  std::copy(kLibhdf5V0SuperblockAfterUserBlock.begin(), kLibhdf5V0SuperblockAfterUserBlock.end(),
            image.begin() + 512);
  EXPECT_EQ(CheckImage(image).verdict, Verdict::kOk);
}

TEST(Superblock, AcceptsEveryVersionWhenTheSizeMatches) {
  for (int version = 0; version <= 3; ++version) {
    SCOPED_TRACE(version);
    const HeaderCheck check = CheckImage(FileImage({.version = version, .eof = 4096}, 0, 4096));
    EXPECT_EQ(check.verdict, Verdict::kOk) << check.reason;
    EXPECT_TRUE(check.reason.empty());
    ASSERT_TRUE(check.superblock);
    EXPECT_EQ(check.superblock->version, version);
    EXPECT_EQ(check.expected_bytes, 4096u);
  }
}

TEST(Superblock, AcceptsEveryOffsetAndLengthSizeLibhdf5Accepts) {
  for (int version : {0, 1, 2, 3}) {
    for (int width : {2, 4, 8, 16, 32}) {
      SCOPED_TRACE(::testing::Message() << "v" << version << " width " << width);
      const Fields f{.version = version,
                     .sizeof_offsets = width,
                     .sizeof_lengths = width,
                     .eof = 2000,
                     .root = 300};
      const HeaderCheck check = CheckImage(FileImage(f, 0, 2000));
      EXPECT_EQ(check.verdict, Verdict::kOk) << check.reason;
      ASSERT_TRUE(check.superblock);
      EXPECT_EQ(check.superblock->sizeof_offsets, width);
    }
  }
}

TEST(Superblock, ParsesFourByteOffsetsWithEightByteLengths) {
  for (int version : {0, 1, 2, 3}) {
    SCOPED_TRACE(version);
    const Fields f{.version = version, .sizeof_offsets = 4, .sizeof_lengths = 8, .eof = 777};
    const HeaderCheck check = CheckImage(FileImage(f, 0, 777));
    EXPECT_EQ(check.verdict, Verdict::kOk) << check.reason;
    EXPECT_EQ(check.expected_bytes, 777u);
  }
}

TEST(Superblock, ReportsCorruptForAnOffsetSizeLibhdf5Refuses) {
  Bytes image = FileImage({.version = 0, .eof = 4096}, 0, 4096);
  image[13] = 3;  // Size of offsets.
  const HeaderCheck check = CheckImage(image);
  EXPECT_EQ(check.verdict, Verdict::kCorrupt);
  EXPECT_NE(check.reason.find("offsets are 3 bytes"), std::string::npos) << check.reason;
}

TEST(Superblock, FindsTheSignatureAfterA512Or1024ByteUserBlock) {
  for (std::uint64_t user_block : {512u, 1024u, 4096u}) {
    for (int version : {0, 2, 3}) {
      SCOPED_TRACE(::testing::Message() << "user block " << user_block << " v" << version);
      const Fields f{.version = version, .base = user_block, .eof = user_block + 3000};
      const HeaderCheck check = CheckImage(FileImage(f, user_block, user_block + 3000));
      EXPECT_EQ(check.verdict, Verdict::kOk) << check.reason;
      ASSERT_TRUE(check.superblock);
      EXPECT_EQ(check.superblock->signature_offset, user_block);
      EXPECT_EQ(check.expected_bytes, user_block + 3000);
    }
  }
}

TEST(Superblock, IgnoresASignatureAtAnOffsetThatIsNotAUserBlockSize) {
  const Fields f{.version = 0, .base = 768, .eof = 4096};
  EXPECT_EQ(CheckImage(FileImage(f, 768, 4096)).verdict, Verdict::kNotCheckpoint);
}

// libhdf5 moves the stored end-of-file address with the superblock when a user block
// was prepended after writing (the stored base address is then stale).
TEST(Superblock, FollowsASuperblockMovedByAPrependedUserBlock) {
  const Fields f{.version = 2, .base = 0, .eof = 3000};
  const HeaderCheck check = CheckImage(FileImage(f, 512, 3512));
  EXPECT_EQ(check.verdict, Verdict::kOk) << check.reason;
  EXPECT_EQ(check.expected_bytes, 3512u);
  EXPECT_EQ(CheckImage(FileImage(f, 512, 3511)).verdict, Verdict::kTruncated);
}

TEST(Superblock, ReportsCorruptOnABadChecksum) {
  for (int version : {2, 3}) {
    SCOPED_TRACE(version);
    Bytes image = FileImage({.version = version, .eof = 4096}, 0, 4096);
    image[28] ^= 0x01;  // A bit of the end-of-file address, which the checksum covers.
    const HeaderCheck check = CheckImage(image);
    EXPECT_EQ(check.verdict, Verdict::kCorrupt);
    EXPECT_NE(check.reason.find("checksum mismatch"), std::string::npos) << check.reason;
  }
}

TEST(Superblock, ReportsInProgressWhenV3SaysAWriterHasItOpen) {
  for (std::uint32_t flags : {0x1u, 0x4u, 0x5u}) {
    SCOPED_TRACE(flags);
    // A size mismatch is what a file being written looks like; the flag explains it.
    const HeaderCheck check =
        CheckImage(FileImage({.version = 3, .flags = flags, .eof = 8192}, 0, 4096));
    EXPECT_EQ(check.verdict, Verdict::kInProgress);
    EXPECT_EQ(check.reason,
              "superblock v3 says a writer has it open (or the writer died before closing it)");
    ASSERT_TRUE(check.superblock);
    EXPECT_EQ(check.superblock->open_for_write(), (flags & 1) != 0);
    EXPECT_EQ(check.superblock->swmr_write(), (flags & 4) != 0);
  }
}

// libhdf5 1.10 sets bit 0 in every superblock version while writing, but refuses only
// v3 files for it. Before v3: the flag with a matching size is a readable file; with a file
// grown past its recorded end it is a save under way; a short file is still truncated.
TEST(Superblock, TreatsTheWriteFlagBeforeV3AsInProgressOnlyWhenTheFileGrewPastItsEnd) {
  for (int version : {0, 1, 2}) {
    SCOPED_TRACE(version);
    const HeaderCheck ok = CheckImage(FileImage({.version = version, .flags = 1, .eof = 4096}, 0, 4096));
    EXPECT_EQ(ok.verdict, Verdict::kOk) << ok.reason;
    EXPECT_FALSE(ok.superblock->open_for_write());
    const HeaderCheck longer =
        CheckImage(FileImage({.version = version, .flags = 1, .eof = 4096}, 0, 4100));
    EXPECT_EQ(longer.verdict, Verdict::kInProgress) << longer.reason;
    EXPECT_NE(longer.reason.find("a save is under way"), std::string::npos) << longer.reason;
    const HeaderCheck shorter =
        CheckImage(FileImage({.version = version, .flags = 1, .eof = 4096}, 0, 4000));
    EXPECT_EQ(shorter.verdict, Verdict::kTruncated);
    EXPECT_NE(shorter.reason.find("a writer had it open"), std::string::npos) << shorter.reason;
  }
}

TEST(Superblock, ReportsCorruptForFlagsLibhdf5DoesNotKnow) {
  EXPECT_EQ(CheckImage(FileImage({.version = 2, .flags = 0x08, .eof = 4096}, 0, 4096)).verdict,
            Verdict::kCorrupt);
  EXPECT_EQ(CheckImage(FileImage({.version = 0, .flags = 0x10, .eof = 4096}, 0, 4096)).verdict,
            Verdict::kCorrupt);
}

TEST(Superblock, ReportsNotCheckpointWithoutASignature) {
  Bytes image(5000, 'x');
  const HeaderCheck check = CheckImage(image);
  EXPECT_EQ(check.verdict, Verdict::kNotCheckpoint);
  EXPECT_EQ(check.reason,
            "no HDF5 signature at offset 0 or any user-block offset: not an HDF5 file");
  EXPECT_FALSE(check.superblock);
}

TEST(Superblock, ReportsEmptyForAZeroByteFile) { EXPECT_EQ(CheckImage({}).verdict, Verdict::kEmpty); }

TEST(Superblock, ReportsTruncatedWhenTheFileEndsInsideTheSignature) {
  const Bytes image = {0x89, 'H', 'D', 'F', '\r'};
  EXPECT_EQ(CheckImage(image).verdict, Verdict::kTruncated);
  EXPECT_EQ(CheckImage({'H', 'D', 'F'}).verdict, Verdict::kNotCheckpoint);
}

TEST(Superblock, ReportsTruncatedWhenTheFileEndsInsideTheSuperblock) {
  for (int version = 0; version <= 3; ++version) {
    const Bytes whole = SuperblockBytes({.version = version});
    for (std::size_t size = 8; size < whole.size(); ++size) {
      SCOPED_TRACE(::testing::Message() << "v" << version << " cut at " << size);
      const HeaderCheck check = CheckImage(Bytes(whole.begin(), whole.begin() + size));
      EXPECT_EQ(check.verdict, Verdict::kTruncated) << check.reason;
    }
  }
}

TEST(Superblock, ReportsTruncatedWhenFileShorterThanEof) {
  const std::uint64_t stored = 209715200;
  const std::uint64_t actual = 104857600;
  const Bytes image = SuperblockBytes({.version = 0, .eof = stored});
  const HeaderCheck check = CheckHeader(MemoryReader(image, actual, nullptr), actual);
  EXPECT_EQ(check.verdict, Verdict::kTruncated);
  EXPECT_EQ(check.reason,
            "file ends at 104857600 bytes but its HDF5 superblock says 209715200: truncated "
            "(disk full or writer killed during save?)");
  EXPECT_EQ(check.expected_bytes, stored);
}

TEST(Superblock, ReportsCorruptWhenFileLongerThanEof) {
  const HeaderCheck check = CheckImage(FileImage({.version = 0, .eof = 6248}, 0, 6548));
  EXPECT_EQ(check.verdict, Verdict::kCorrupt);
  EXPECT_EQ(check.reason,
            "file is 300 bytes longer than its HDF5 superblock's end-of-file address (6248): the "
            "writer did not close it cleanly");
  EXPECT_EQ(CheckImage(FileImage({.version = 0, .eof = 6248}, 0, 6249)).reason,
            "file is 1 byte longer than its HDF5 superblock's end-of-file address (6248): the "
            "writer did not close it cleanly");
}

TEST(Superblock, ReportsCorruptForAnUnknownVersion) {
  for (int version : {4, 72, 255}) {
    Bytes image = FileImage({.version = 3, .eof = 4096}, 0, 4096);
    image[8] = static_cast<std::uint8_t>(version);
    const HeaderCheck check = CheckImage(image);
    EXPECT_EQ(check.verdict, Verdict::kCorrupt);
    EXPECT_NE(check.reason.find("version " + std::to_string(version)), std::string::npos)
        << check.reason;
  }
}

TEST(Superblock, ReportsCorruptForAnUndefinedOrImpossibleEof) {
  EXPECT_EQ(CheckImage(FileImage({.version = 2, .eof = kUndef}, 0, 4096)).verdict, Verdict::kCorrupt);
  EXPECT_EQ(CheckImage(FileImage({.version = 2, .eof = 20}, 0, 4096)).verdict, Verdict::kCorrupt);
  // A base address past the end-of-file address cannot give a file size.
  EXPECT_EQ(CheckImage(FileImage({.version = 0, .base = 9000, .eof = 4096}, 0, 4096)).verdict,
            Verdict::kCorrupt);
}

TEST(Superblock, ReportsCorruptWhenTheRootGroupLiesOutsideTheFile) {
  EXPECT_EQ(CheckImage(FileImage({.version = 0, .eof = 4096, .root = 4096}, 0, 4096)).verdict,
            Verdict::kCorrupt);
  EXPECT_EQ(CheckImage(FileImage({.version = 3, .eof = 4096, .root = kUndef}, 0, 4096)).verdict,
            Verdict::kCorrupt);
}

TEST(Superblock, ReportsCorruptForAnAddressWiderThan64Bits) {
  Bytes image = FileImage({.version = 1, .sizeof_offsets = 16, .eof = 4096}, 0, 4096);
  image[28 + 16 * 2 + 9] = 1;  // A high byte of the 16-byte end-of-file address.
  EXPECT_EQ(CheckImage(image).verdict, Verdict::kCorrupt);
}

TEST(Superblock, ExpectedFileSizeDoesNotWrap) {
  Superblock sb;
  sb.signature_offset = 1024;
  sb.base_address = 0;
  sb.eof_address = ~std::uint64_t{0} - 10;
  EXPECT_EQ(sb.ExpectedFileSize(), std::nullopt);
  sb.base_address = 5000;
  sb.eof_address = 10;
  EXPECT_EQ(sb.ExpectedFileSize(), std::nullopt);
  sb.base_address = 1000;
  EXPECT_EQ(sb.ExpectedFileSize(), 34u);
}

TEST(Superblock, ReadsOnlyAFewKiBWhateverTheFileSize) {
  const std::uint64_t terabyte = std::uint64_t{1} << 40;
  const Bytes image = SuperblockBytes({.version = 3, .eof = terabyte});
  std::uint64_t bytes_read = 0;
  const HeaderCheck check = CheckHeader(MemoryReader(image, terabyte, &bytes_read), terabyte);
  EXPECT_EQ(check.verdict, Verdict::kOk) << check.reason;
  EXPECT_LE(bytes_read, 4096u);

  // No signature anywhere: every user-block offset below 1 TiB is probed, 8 bytes each.
  const Bytes junk(64, 'x');
  bytes_read = 0;
  EXPECT_EQ(CheckHeader(MemoryReader(junk, terabyte, &bytes_read), terabyte).verdict,
            Verdict::kNotCheckpoint);
  EXPECT_LE(bytes_read, 4096u);
}

TEST(Superblock, ReportsPermissionDeniedWhenReadsFailWithEacces) {
  const ReadAt denied = [](std::uint64_t, void*, std::size_t) -> long {
    errno = EACCES;
    return -1;
  };
  EXPECT_EQ(CheckHeader(denied, 4096).verdict, Verdict::kPermissionDenied);
  const ReadAt broken = [](std::uint64_t, void*, std::size_t) -> long {
    errno = EIO;
    return -1;
  };
  const HeaderCheck check = CheckHeader(broken, 4096);
  EXPECT_EQ(check.verdict, Verdict::kCorrupt);
  EXPECT_NE(check.reason.find("Input/output error"), std::string::npos) << check.reason;
}

TEST(Superblock, RetriesInterruptedAndShortReads) {
  const Bytes image = FileImage({.version = 2, .base = 512, .eof = 4096}, 512, 4096);
  const ReadAt inner = MemoryReader(image, image.size(), nullptr);
  int calls = 0;
  const ReadAt stuttering = [&](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (++calls % 2 == 1) {
      errno = EINTR;
      return -1;
    }
    return inner(offset, buf, std::min<std::size_t>(n, 3));
  };
  const HeaderCheck check = CheckHeader(stuttering, image.size());
  EXPECT_EQ(check.verdict, Verdict::kOk) << check.reason;
}

TEST(Superblock, ReportsInProgressWhenTheFileShrinksWhileRead) {
  const Bytes image = SuperblockBytes({.version = 2, .eof = 4096});
  const Bytes cut(image.begin(), image.begin() + 30);
  // stat said 4096 bytes; by the time the superblock is read only 30 are left.
  EXPECT_EQ(CheckHeader(MemoryReader(cut, cut.size(), nullptr), 4096).verdict,
            Verdict::kInProgress);
}

// Every prefix and many random mutations of valid superblocks: ParseSuperblock must
// answer (under ASan/UBSan: without touching memory it does not own).
TEST(Superblock, SurvivesTruncatedAndMutatedInput) {
  std::mt19937 rng(12345);
  for (int version = 0; version <= 3; ++version) {
    for (int width : {2, 8, 32}) {
      const Bytes valid =
          SuperblockBytes({.version = version, .sizeof_offsets = width, .sizeof_lengths = width});
      for (std::size_t n = 0; n <= valid.size(); ++n) {
        Superblock sb;
        std::string err;
        const bool ok = ParseSuperblock(std::span(valid).first(n), 0, &sb, &err);
        EXPECT_EQ(ok, n == valid.size()) << err;
      }
      for (int round = 0; round < 2000; ++round) {
        Bytes mutated = valid;
        for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0; --flips) {
          mutated[8 + rng() % (mutated.size() - 8)] = static_cast<std::uint8_t>(rng());
        }
        mutated.resize(rng() % (mutated.size() + 1));
        Superblock sb;
        std::string err;
        const bool parsed = ParseSuperblock(mutated, 0, &sb, &err);
        if (!parsed) {
          EXPECT_FALSE(err.empty());
        }
        // Whatever the damage, the header check answers with a header-level verdict, says why
        // unless ok, and says ok only for a superblock that parses and matches the file's size.
        const HeaderCheck check = CheckImage(mutated);
        SCOPED_TRACE(check.reason);
        EXPECT_TRUE(check.verdict == Verdict::kOk || check.verdict == Verdict::kEmpty ||
                    check.verdict == Verdict::kNotCheckpoint || check.verdict == Verdict::kTruncated ||
                    check.verdict == Verdict::kCorrupt || check.verdict == Verdict::kInProgress)
            << VerdictName(check.verdict);
        if (check.verdict == Verdict::kOk) {
          EXPECT_TRUE(parsed);
          EXPECT_TRUE(check.reason.empty());
          EXPECT_EQ(check.expected_bytes, mutated.size());
        } else {
          EXPECT_FALSE(check.reason.empty());
        }
        if (mutated.size() < 8) {
          EXPECT_EQ(check.verdict, mutated.empty() ? Verdict::kEmpty : Verdict::kTruncated);
        }
        if (parsed && sb.ExpectedFileSize() && *sb.ExpectedFileSize() > mutated.size() &&
            !sb.open_for_write() && !sb.swmr_write() && check.verdict != Verdict::kCorrupt) {
          EXPECT_EQ(check.verdict, Verdict::kTruncated);
        }
      }
    }
  }
}

// Header-level verdicts on the shared corpus of real files (set CKPTWATCH_CORPUS).
TEST(SuperblockCorpus, GivesTheExpectedHeaderVerdicts) {
  const char* corpus = std::getenv("CKPTWATCH_CORPUS");
#ifdef CKPTWATCH_TEST_CORPUS
  if (corpus == nullptr) corpus = CKPTWATCH_TEST_CORPUS;  // the build's corpus (CMake)
#endif
  if (corpus == nullptr) GTEST_SKIP() << "CKPTWATCH_CORPUS is not set";
  std::ifstream manifest(std::string(corpus) + "/MANIFEST.tsv");
  ASSERT_TRUE(manifest) << "no MANIFEST.tsv in " << corpus;

  // Files whose defect is visible in the superblock alone.
  const std::vector<std::pair<std::string, Verdict>> expected_defects = {
      {"malformed/hdf5test_sb2_eoa_beyond_eof_truncated.h5", Verdict::kTruncated},
      {"malformed/h5py_sb3_left_open_for_write.hdf5", Verdict::kInProgress},
      {"malformed/hdf5test_sb3_status_flags_not_closed.h5", Verdict::kInProgress},
      {"malformed/fake_signature_plus_text_72bytes.h5", Verdict::kCorrupt},
  };
  std::string line;
  std::getline(manifest, line);  // Header row.
  int checked = 0;
  while (std::getline(manifest, line)) {
    const std::string file = line.substr(0, line.find('\t'));
    SCOPED_TRACE(file);
    const std::string path = std::string(corpus) + "/" + file;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    struct stat st {};
    ASSERT_EQ(fstat(fd, &st), 0);
    const HeaderCheck check = CheckHeaderOfFd(fd, static_cast<std::uint64_t>(st.st_size));
    close(fd);
    ++checked;

    const bool is_zip = file.ends_with(".keras");
    if (file.starts_with("valid/")) {
      EXPECT_EQ(check.verdict, is_zip ? Verdict::kNotCheckpoint : Verdict::kOk) << check.reason;
    }
    for (const auto& [name, verdict] : expected_defects) {
      if (name == file) {
        EXPECT_EQ(check.verdict, verdict) << check.reason;
      }
    }
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace ckptwatch
