#include "verify/format_detect.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "verify/format_test_bytes.h"
#include "verify/verifier.h"

namespace ckptwatch {
namespace {

using namespace std::string_literals;

FileFormat Detect(const std::string& bytes) {
  ReadAt over = [&bytes](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (offset >= bytes.size()) return 0;
    n = std::min<std::size_t>(n, bytes.size() - offset);
    std::memcpy(buf, bytes.data() + offset, n);
    return static_cast<long>(n);
  };
  return DetectFormat(over, bytes.size());
}

// A zip whose only local header names `name`, cut before any directory.
std::string ZipStart(const std::string& name) {
  std::string h = "PK\x03\x04"s + std::string(22, '\0');
  h += static_cast<char>(name.size());
  h += "\0\0\0"s;
  return h + name;
}

TEST(FormatDetect, TellsFormatsByContent) {
  EXPECT_EQ(Detect("\x89HDF\r\n\x1a\n"s + std::string(100, '\0')), FileFormat::kHdf5);
  EXPECT_EQ(Detect(std::string(512, 'x') + "\x89HDF\r\n\x1a\n"s + std::string(100, '\0')), FileFormat::kHdf5);
  EXPECT_EQ(Detect("\x02\0\0\0\0\0\0\0{}"s), FileFormat::kSafetensors);
  EXPECT_EQ(Detect("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."s), FileFormat::kTorchLegacy);
  EXPECT_EQ(Detect("L119547037146038801333356L\n."), FileFormat::kTorchLegacy);
  EXPECT_EQ(Detect(ZipStart("archive/data.pkl")), FileFormat::kTorchZip);
  EXPECT_EQ(Detect(ZipStart("model/code/__torch__.py")), FileFormat::kTorchScript);
  EXPECT_EQ(Detect(ZipStart("metadata.json")), FileFormat::kKerasZip);
  EXPECT_EQ(Detect(ZipStart("readme.txt")), FileFormat::kZip);
}

TEST(FormatDetect, NamesWhatIsSavedUnderACheckpointNameInstead) {
  EXPECT_EQ(Detect("version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 12\n"), FileFormat::kLfsPointer);
  EXPECT_EQ(Detect("\n  <!DOCTYPE html><html><body>Google Drive"), FileFormat::kHtml);
  EXPECT_EQ(Detect(R"({"metadata": {"total_size": 1}, "weight_map": {"a": "model-00001.bin"}})"), FileFormat::kShardIndex);
  EXPECT_EQ(Detect(R"({"a": 1})"), FileFormat::kJson);
  EXPECT_EQ(Detect("\x80\x04\x95\x05\0\0\0\0\0\0\0K\x01."s), FileFormat::kPickle);
  EXPECT_EQ(Detect("/home/user/.cache/huggingface/hub/model.safetensors"), FileFormat::kText);
  EXPECT_EQ(Detect("\x89PNG\r\n\x1a\n"s), FileFormat::kUnknown);
}

TEST(FormatDetect, OnlyAForeignBinIsSkippedQuietly) {
  VerifyResult r;
  r.verdict = Verdict::kNotCheckpoint;
  for (const char* format : {"unknown", "text", "json", "pickle", "zip"}) {
    r.format = format;
    EXPECT_TRUE(IsQuietlySkipped("/ckpt/vocab.bin", r)) << format;
    EXPECT_FALSE(IsQuietlySkipped("/ckpt/model.pt", r)) << format;
  }
  for (const char* format : {"lfs_pointer", "html"}) {
    r.format = format;
    EXPECT_FALSE(IsQuietlySkipped("/ckpt/pytorch_model.bin", r)) << format;
  }
  r.format = "torch_zip";
  r.verdict = Verdict::kTruncated;
  EXPECT_FALSE(IsQuietlySkipped("/ckpt/pytorch_model.bin", r));
}

// `user_block` bytes holding `content`, then an HDF5 signature: what h5py writes with
// userblock_size and a program then fills the user block with.
std::string InUserBlock(const std::string& content, std::size_t user_block) {
  std::string out = content;
  out.resize(user_block, '\0');
  return out + "\x89HDF\r\n\x1a\n"s + std::string(200, '\0');
}

TEST(FormatDetect, AFileNamedAsHdf5IsHdf5WhateverItsUserBlockHolds) {
  const std::string torch_zip = testing::ZipArchive(testing::TorchZipFiles());
  const std::string keras_zip =
      testing::ZipArchive({{"metadata.json", "{}"}, {"config.json", "{}"}});
  const std::string legacy = testing::LegacyTorchFile(4);
  struct Case {
    std::string bytes;
    const char* name;
    FileFormat format;
  };
  const Case cases[] = {
      // h5py (and Keras's .h5/.hdf5 loaders) find the signature at 512, 1024, 2048, ...
      {InUserBlock(torch_zip, 1024), "model.h5", FileFormat::kHdf5},
      {InUserBlock(torch_zip, 1024), "model.hdf5", FileFormat::kHdf5},
      {InUserBlock(torch_zip, 1024), "/ckpt/model.weights.h5", FileFormat::kHdf5},
      {InUserBlock(keras_zip, 512), "model.h5", FileFormat::kHdf5},
      {InUserBlock(keras_zip, 4096), "model.h5", FileFormat::kHdf5},
      {InUserBlock(legacy, 1024), "model.h5", FileFormat::kHdf5},
      {InUserBlock("\x02\0\0\0\0\0\0\0{}"s, 512), "model.h5", FileFormat::kHdf5},
      // Under other names the zip or pickle at 0 decides, as torch.load and a .keras load do.
      {InUserBlock(torch_zip, 1024), "model.pt", FileFormat::kTorchZip},
      {InUserBlock(torch_zip, 1024), "", FileFormat::kTorchZip},
      {InUserBlock(keras_zip, 512), "model.keras", FileFormat::kKerasZip},
      {InUserBlock(keras_zip, 512), "model.h5.keras", FileFormat::kKerasZip},
      {InUserBlock(legacy, 1024), "pytorch_model.bin", FileFormat::kTorchLegacy},
      // libhdf5 looks only at 0 and powers of two from 512: 768 is not a user-block size.
      {InUserBlock(keras_zip, 768), "model.h5", FileFormat::kKerasZip},
      // A zip without a signature after it stays a zip, whatever its name.
      {torch_zip, "model.h5", FileFormat::kTorchZip},
      {keras_zip, "model.hdf5", FileFormat::kKerasZip},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FormatName(DetectFormat(testing::OverBytes(c.bytes), c.bytes.size(), c.name)),
              FormatName(c.format))
        << c.name << ", " << c.bytes.size() << " bytes";
  }
}

}  // namespace
}  // namespace ckptwatch
