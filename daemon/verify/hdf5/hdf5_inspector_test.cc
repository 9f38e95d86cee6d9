#include "verify/hdf5/hdf5_inspector.h"

#include "verify/hdf5/hdf5_handle.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "verify/hdf5/hdf5_test_images.h"
#include "verify/hdf5/superblock.h"

namespace ckptwatch {
namespace {

using hdf5_images::ImageOf;
using hdf5_images::Inspect;
using hdf5_images::MakeBfloat16;
using hdf5_images::MakeFloat16;

// Files are written by libhdf5 itself into memory (the core driver) and inspected as an image,
// so the properties below cost no disk I/O.

enum class Storage { kContiguous, kChunked, kChunkedGzip };

const char* StorageName(Storage s) {
  switch (s) {
    case Storage::kContiguous: return "contiguous";
    case Storage::kChunked: return "chunked";
    case Storage::kChunkedGzip: return "chunked+shuffle+gzip+fletcher32";
  }
  return "?";
}

// A floating-point type as the formats store it, with one finite and one NaN bit pattern.
struct FloatType {
  const char* name;
  std::size_t size;
  std::uint64_t one;  // 1.0
  std::uint64_t nan;
  hid_t (*make)();
};

hid_t MakeFloat32() { return H5Tcopy(H5T_IEEE_F32LE); }
hid_t MakeFloat64() { return H5Tcopy(H5T_IEEE_F64LE); }

const FloatType kTypes[] = {
    {"float16", 2, 0x3c00, 0x7e00, MakeFloat16},
    {"bfloat16", 2, 0x3f80, 0x7fc0, MakeBfloat16},
    {"float32", 4, 0x3f800000, 0x7fc00000, MakeFloat32},
    {"float64", 8, 0x3ff0000000000000, 0x7ff8000000000000, MakeFloat64},
};

// One 1-D dataset: `count` ones with NaN at the listed elements.
struct DatasetSpec {
  std::string name;
  std::size_t count;
  std::vector<std::size_t> nan_at;
};

std::vector<std::uint8_t> Values(const FloatType& type, const DatasetSpec& spec) {
  std::vector<std::uint8_t> bytes(type.size * spec.count);
  for (std::size_t i = 0; i < spec.count; ++i) std::memcpy(&bytes[i * type.size], &type.one, type.size);
  for (std::size_t at : spec.nan_at) std::memcpy(&bytes[at * type.size], &type.nan, type.size);
  return bytes;
}


// Writes the datasets with libhdf5 into memory and returns the file image.
std::vector<std::uint8_t> WriteImage(const FloatType& type, Storage storage,
                                     const std::vector<DatasetSpec>& datasets) {
  return ImageOf([&](hid_t file) {
    hid_t file_type = type.make();
    for (const DatasetSpec& spec : datasets) {
      const hsize_t dims[1] = {spec.count};
      hid_t space = H5Screate_simple(1, dims, nullptr);
      hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      if (storage != Storage::kContiguous) {
        // A chunk size that does not divide the count: the last chunk is partial.
        const hsize_t chunk[1] = {std::min<hsize_t>(spec.count, 7919)};
        H5Pset_chunk(dcpl, 1, chunk);
      }
      if (storage == Storage::kChunkedGzip) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, 4);
        H5Pset_fletcher32(dcpl);
      }
      hid_t dataset =
          H5Dcreate2(file, spec.name.c_str(), file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
      const std::vector<std::uint8_t> values = Values(type, spec);
      EXPECT_GE(H5Dwrite(dataset, file_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
      H5Dclose(dataset);
      H5Pclose(dcpl);
      H5Sclose(space);
    }
    H5Tclose(file_type);
  });
}


// 100,000 elements crosses the 16-bit scan kernel's 2^15-element block; the other size crosses
// the inspector's 8 MiB read buffer, so the scan of a later block must see the NaN too.
std::vector<std::size_t> Counts(const FloatType& type) {
  return {100000, (std::size_t{8} << 20) / type.size + 4321};
}

TEST(Hdf5InspectorNonfinite, FindsNanAtTheFirstLastAndARandomElementOfEveryFloatTypeAndStorage) {
  std::mt19937_64 rng(42);
  for (const FloatType& type : kTypes) {
    for (Storage storage : {Storage::kContiguous, Storage::kChunked, Storage::kChunkedGzip}) {
      for (std::size_t count : Counts(type)) {
        SCOPED_TRACE(::testing::Message() << type.name << ", " << StorageName(storage) << ", "
                                        << count << " elements");
        const std::size_t random = 1 + rng() % (count - 2);
        const std::vector<std::uint8_t> image =
            WriteImage(type, storage,
                       {{"a_clean", count, {}},
                        {"b_first", count, {0}},
                        {"c_last", count, {count - 1}},
                        {"d_random", count, {random}}});
        ASSERT_FALSE(image.empty());
        const Hdf5Inspection full = Inspect(image, Level::kFull);
        EXPECT_EQ(full.verdict, Verdict::kNonfinite) << full.reason;
        EXPECT_EQ(full.nonfinite, 3u) << full.reason;
        EXPECT_EQ(full.datasets, 4u);
        EXPECT_EQ(full.parameters, 4 * count);
        EXPECT_NE(full.reason.find("'/b_first'"), std::string::npos) << full.reason;
        const Hdf5Inspection structure = Inspect(image, Level::kStructure);
        EXPECT_EQ(structure.verdict, Verdict::kOk) << structure.reason;
        EXPECT_FALSE(structure.nonfinite.has_value());
      }
    }
  }
}

TEST(Hdf5InspectorNonfinite, FindsOnlyTheLastElementNanOfEachFloatTypeAndStorage) {
  // One NaN, in the very last element of the file's only dataset: nothing else can stand in.
  for (const FloatType& type : kTypes) {
    for (Storage storage : {Storage::kContiguous, Storage::kChunked, Storage::kChunkedGzip}) {
      for (std::size_t count : {std::size_t{100000}}) {
        SCOPED_TRACE(::testing::Message() << type.name << ", " << StorageName(storage) << ", "
                                        << count << " elements");
        const auto image = WriteImage(type, storage, {{"w", count, {count - 1}}});
        const auto clean = WriteImage(type, storage, {{"w", count, {}}});
        for (bool direct : {true, false}) {
          SCOPED_TRACE(direct ? "direct reads" : "libhdf5 reads");
          const Hdf5Inspection full = Inspect(image, Level::kFull, image.size(), direct);
          EXPECT_EQ(full.verdict, Verdict::kNonfinite) << full.reason;
          EXPECT_EQ(full.nonfinite, 1u);
          const bool read_directly = direct && storage != Storage::kChunkedGzip;
          EXPECT_EQ(full.direct_datasets, read_directly ? 1u : 0u);
          const Hdf5Inspection ok = Inspect(clean, Level::kFull, clean.size(), direct);
          EXPECT_EQ(ok.verdict, Verdict::kOk) << ok.reason;
          EXPECT_EQ(ok.nonfinite, 0u);
        }
      }
    }
  }
}

// Where raw data lies in the file: [start, end) of each contiguous dataset or chunk.
std::vector<std::pair<std::uint64_t, std::uint64_t>> RawExtents(const std::vector<std::uint8_t>& image) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> extents;
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_core(fapl, 1 << 20, false);
  H5Pset_file_image(fapl, const_cast<std::uint8_t*>(image.data()), image.size());
  hid_t file = H5Fopen("extents.h5", H5F_ACC_RDONLY, fapl);
  H5Ovisit2(
      file, H5_INDEX_NAME, H5_ITER_NATIVE,
      [](hid_t root, const char* name, const H5O_info_t* info, void* data) -> herr_t {
        auto* out = static_cast<std::vector<std::pair<std::uint64_t, std::uint64_t>>*>(data);
        if (info->type != H5O_TYPE_DATASET) return 0;
        hid_t d = H5Dopen2(root, name, H5P_DEFAULT);
        hid_t space = H5Dget_space(d);
        hsize_t chunks = 0;
        if (H5Dget_num_chunks(d, space, &chunks) >= 0 && chunks > 0) {
          for (hsize_t i = 0; i < chunks; ++i) {
            haddr_t address = 0;
            hsize_t size = 0;
            H5Dget_chunk_info(d, space, i, nullptr, nullptr, &address, &size);
            out->emplace_back(address, address + size);
          }
        } else if (H5Dget_offset(d) != HADDR_UNDEF) {
          out->emplace_back(H5Dget_offset(d), H5Dget_offset(d) + H5Dget_storage_size(d));
        }
        H5Sclose(space);
        H5Dclose(d);
        return 0;
      },
      &extents, H5O_INFO_BASIC);
  H5Fclose(file);
  H5Pclose(fapl);
  return extents;
}

TEST(Hdf5InspectorTruncation, RawDataEndingOneBytePastTheFileIsTruncatedAtEveryExtent) {
  // The inspector's own bound (the file size it is told) against every dataset's and chunk's
  // end: exactly at the end is inside, one byte short is truncated.
  for (Storage storage : {Storage::kContiguous, Storage::kChunked, Storage::kChunkedGzip}) {
    SCOPED_TRACE(StorageName(storage));
    const auto image = WriteImage(kTypes[2], storage, {{"a", 20000, {}}, {"b", 30000, {}}});
    const auto extents = RawExtents(image);
    ASSERT_GE(extents.size(), 2u);
    std::uint64_t last_end = 0;
    for (const auto& [start, end] : extents) last_end = std::max(last_end, end);
    const Hdf5Inspection whole = Inspect(image, Level::kStructure, last_end);
    EXPECT_EQ(whole.verdict, Verdict::kOk) << "file size " << last_end << ": " << whole.reason;
    for (const auto& [start, end] : extents) {
      SCOPED_TRACE(::testing::Message() << "extent [" << start << ", " << end << ")");
      for (std::uint64_t size : {end - 1, start + 1, start}) {
        const Hdf5Inspection cut = Inspect(image, Level::kStructure, size);
        EXPECT_EQ(cut.verdict, Verdict::kTruncated) << "file size " << size << ": " << cut.reason;
      }
    }
  }
}

TEST(Hdf5InspectorTruncation, HeaderCheckSaysTruncatedForACutAtEveryStructuralBoundary) {
  // A file libhdf5 wrote, cut inside the signature, at every byte of the superblock, at both
  // ends of every raw-data extent and one byte before its end: each is truncated, the whole
  // file is ok.
  for (Storage storage : {Storage::kContiguous, Storage::kChunkedGzip}) {
    SCOPED_TRACE(StorageName(storage));
    const auto image = WriteImage(kTypes[0], storage, {{"a", 50000, {}}, {"b", 100000, {}}});
    auto check = [&](std::uint64_t size) {
      return CheckHeader(
          [&](std::uint64_t offset, void* buf, std::size_t n) -> long {
            if (offset >= size) return 0;
            n = static_cast<std::size_t>(std::min<std::uint64_t>(n, size - offset));
            std::memcpy(buf, image.data() + offset, n);
            return static_cast<long>(n);
          },
          size);
    };
    const HeaderCheck whole = check(image.size());
    ASSERT_EQ(whole.verdict, Verdict::kOk) << whole.reason;
    ASSERT_TRUE(whole.superblock);
    std::vector<std::uint64_t> cuts;
    for (std::uint64_t i = 1; i <= 256 && i < image.size(); ++i) cuts.push_back(i);
    for (const auto& [start, end] : RawExtents(image)) {
      for (std::uint64_t at : {start, start + 1, end - 1, end}) cuts.push_back(at);
    }
    cuts.push_back(image.size() - 1);
    for (std::uint64_t size : cuts) {
      if (size >= image.size()) continue;
      const HeaderCheck cut = check(size);
      EXPECT_EQ(cut.verdict, Verdict::kTruncated) << "cut at " << size << ": " << cut.reason;
    }
    EXPECT_EQ(check(0).verdict, Verdict::kEmpty);
  }
}

// An HDF5 file whose dataset names another file for its raw data. libhdf5
// only opens that file when the data is read: `full` would read it.
std::vector<std::uint8_t> WriteExternalImage(const std::string& other_file, bool virtual_layout) {
  return ImageOf([&](hid_t file) {
    const hsize_t dims[1] = {16};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (virtual_layout) {
      hid_t source_space = H5Screate_simple(1, dims, nullptr);
      H5Pset_virtual(dcpl, space, other_file.c_str(), "/w", source_space);
      H5Sclose(source_space);
    } else {
      H5Pset_external(dcpl, other_file.c_str(), 0, 16 * sizeof(float));
    }
    hid_t dataset = H5Dcreate2(file, "leak", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dclose(dataset);
    H5Pclose(dcpl);
    H5Sclose(space);
  });
}

TEST(Hdf5InspectorExternalData, ExternalStorageAndVirtualDatasetsAreRefusedAtEveryLevel) {
  InitHdf5ErrorHandling();
  for (bool virtual_layout : {false, true}) {
    const std::vector<std::uint8_t> image = WriteExternalImage("/etc/hostname", virtual_layout);
    ASSERT_FALSE(image.empty());
    for (Level level : {Level::kStructure, Level::kFull}) {
      const Hdf5Inspection result = Inspect(image, level);
      EXPECT_EQ(result.verdict, Verdict::kExternalData)
          << (virtual_layout ? "virtual" : "external") << " at " << LevelName(level) << ": " << result.reason;
      EXPECT_NE(result.reason.find("stores its data in another file"), std::string::npos) << result.reason;
      EXPECT_NE(result.reason.find("'/leak'"), std::string::npos) << result.reason;
      EXPECT_FALSE(result.nonfinite.value_or(0) > 0);
    }
  }
}

// A gzip bomb as an attacker writes one: the same compressed 1 MiB chunk of zeros written raw
// `chunks` times (H5Dwrite_chunk), so the file is ~1 KiB a chunk and decodes to 1 MiB a chunk.
std::vector<std::uint8_t> BombImage(hsize_t chunks) {
  return ImageOf([&](hid_t file) {
    constexpr hsize_t kElements = (1 << 20) / 4;
    std::vector<std::uint8_t> zeros(kElements * 4, 0);
    // The compressed chunk: what libhdf5's own deflate filter makes of one chunk of zeros.
    const std::vector<std::uint8_t> packed = [&] {
      const hsize_t one[1] = {kElements};
      hid_t space = H5Screate_simple(1, one, nullptr);
      hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      H5Pset_chunk(dcpl, 1, one);
      H5Pset_deflate(dcpl, 9);
      hid_t d = H5Dcreate2(file, "seed", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
      EXPECT_GE(H5Dwrite(d, H5T_IEEE_F32LE, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()), 0);
      hsize_t size = 0;
      const hsize_t origin[1] = {0};
      H5Dget_chunk_storage_size(d, origin, &size);
      std::vector<std::uint8_t> out(size);
      uint32_t filters = 0;
      EXPECT_GE(H5Dread_chunk(d, H5P_DEFAULT, origin, &filters, out.data()), 0);
      H5Dclose(d);
      H5Pclose(dcpl);
      H5Sclose(space);
      return out;
    }();
    const hsize_t dims[1] = {chunks * kElements}, chunk[1] = {kElements};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    H5Pset_deflate(dcpl, 9);
    hid_t d = H5Dcreate2(file, "bomb", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    for (hsize_t i = 0; i < chunks; ++i) {
      const hsize_t at[1] = {i * kElements};
      EXPECT_GE(H5Dwrite_chunk(d, H5P_DEFAULT, 0, at, packed.size(), packed.data()), 0);
    }
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
  });
}

// A Keras 2 save_weights() layout as libhdf5 writes it: layer_names (fixed-length strings, as
// h5py stores a numpy "S" array) at the root, then a group per layer — only those in `present`.
std::vector<std::uint8_t> KerasWeightsImage(const std::vector<std::string>& layers,
                                            const std::vector<std::string>& present) {
  return ImageOf([&](hid_t file) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 16);
    std::vector<char> names(16 * layers.size(), '\0');
    for (std::size_t i = 0; i < layers.size(); ++i)
      std::memcpy(&names[16 * i], layers[i].data(), layers[i].size());
    const hsize_t dims[1] = {layers.size()};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t attr = H5Acreate2(file, "layer_names", type, space, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(H5Awrite(attr, type, names.data()), 0);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    for (const std::string& layer : present)
      H5Gclose(H5Gcreate2(file, layer.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  });
}

TEST(Hdf5InspectorKeras, LayersMissingFromOneOnAreASaveCutShortNotCorruption) {
  // h5py flushed after dense_0 and dense_1, then its process was killed.
  const auto image =
      KerasWeightsImage({"dense_0", "dense_1", "dense_2", "dense_3"}, {"dense_0", "dense_1"});
  const Hdf5Inspection out = Inspect(image, Level::kStructure);
  EXPECT_EQ(out.verdict, Verdict::kTruncated) << out.reason;
  EXPECT_NE(out.reason.find(
                "lists 4 layers but the file holds only the first 2 (none from 'dense_2' on)"),
            std::string::npos)
      << out.reason;
  EXPECT_EQ(Inspect(KerasWeightsImage({"dense_0", "dense_1"}, {}), Level::kStructure).verdict,
            Verdict::kTruncated)
      << "killed after layer_names, before the first layer";
}

TEST(Hdf5InspectorKeras, ALayerMissingBeforeOnePresentIsCorrupt) {
  const Hdf5Inspection out =
      Inspect(KerasWeightsImage({"dense_0", "dense_1", "dense_2"}, {"dense_0", "dense_2"}),
              Level::kStructure);
  EXPECT_EQ(out.verdict, Verdict::kCorrupt) << out.reason;
  EXPECT_NE(out.reason.find("lists 'dense_1' but the file has no such group"), std::string::npos)
      << out.reason;
  EXPECT_EQ(
      Inspect(KerasWeightsImage({"dense_0", "dense_1"}, {"dense_0", "dense_1"}), Level::kStructure)
          .verdict,
      Verdict::kOk);
}

TEST(Hdf5Inspector, CompressionBombIsVerifiedAtStructureWithoutDecodingIt) {
  // 300 MiB decoded from ~300 KiB: past the 256 MiB floor of the budget.
  const std::vector<std::uint8_t> image = BombImage(300);
  ASSERT_LT(image.size(), 4u << 20);
  EXPECT_EQ(DecodeBudget(image.size()), 256u << 20);
  const Hdf5Inspection full = Inspect(image, Level::kFull);
  EXPECT_EQ(full.verdict, Verdict::kOk) << full.reason;
  EXPECT_EQ(full.full_skipped_datasets, 1u);
  EXPECT_EQ(full.full_skipped_bytes, 300u << 20);
  EXPECT_EQ(full.datasets, 2u);
  const Hdf5Inspection structure = Inspect(image, Level::kStructure);
  EXPECT_EQ(structure.full_skipped_datasets, 0u);
}

TEST(Hdf5Inspector, CompressedDataWithinTheBudgetIsReadInFull) {
  const std::vector<std::uint8_t> image = BombImage(8);
  const Hdf5Inspection full = Inspect(image, Level::kFull);
  EXPECT_EQ(full.verdict, Verdict::kOk) << full.reason;
  EXPECT_EQ(full.full_skipped_datasets, 0u);
  ASSERT_TRUE(full.nonfinite.has_value());
  EXPECT_EQ(*full.nonfinite, 0u);
}

TEST(Hdf5Inspector, DecodeBudgetIsFourTimesTheFileAboveItsFloor) {
  EXPECT_EQ(DecodeBudget(0), 256u << 20);
  EXPECT_EQ(DecodeBudget(1u << 30), 4ull << 30);
  EXPECT_EQ(DecodeBudget(UINT64_MAX / 2), UINT64_MAX);
}

}  // namespace
}  // namespace ckptwatch
