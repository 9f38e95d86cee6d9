#include "verify/hdf5_inspector.h"

#include "verify/hdf5_handle.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "verify/superblock.h"

namespace ckptwatch {
namespace {

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

hid_t MakeFloat16() {  // as h5py's float16 (numpy.float16)
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}
hid_t MakeBfloat16() {  // as ml_dtypes' bfloat16 stored by h5py: the top half of a float32
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 7, 8, 0, 7);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 127);
  return t;
}
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

// A file libhdf5 creates in memory, `fill` writes into and the test gets as its image.
std::vector<std::uint8_t> ImageOf(const std::function<void(hid_t file)>& fill) {
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

// `direct`: unfiltered floats are read straight from the image (the default), or all through
// libhdf5. A libhdf5-written image ends at its end of allocation.
Hdf5Inspection Inspect(const std::vector<std::uint8_t>& image, Level level, std::uint64_t file_size,
                       bool direct = true) {
  Hdf5Source source;
  source.image = image;
  source.file_size = file_size;
  source.end_of_allocation = image.size();
  source.direct_reads = direct;
  return InspectHdf5(source, level);
}

Hdf5Inspection Inspect(const std::vector<std::uint8_t>& image, Level level) {
  return Inspect(image, level, image.size());
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
        SCOPED_TRACE(testing::Message() << type.name << ", " << StorageName(storage) << ", "
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
        SCOPED_TRACE(testing::Message() << type.name << ", " << StorageName(storage) << ", "
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
      SCOPED_TRACE(testing::Message() << "extent [" << start << ", " << end << ")");
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

// ---- Datatypes a loader cannot read ----------------------------------------------------------

// One object of `type` in a file libhdf5 writes into memory: a 4-element dataset '/w', or an
// attribute 'a' of the group '/g'. Where the C API refuses to build a bad datatype, the test
// writes a good one and changes its datatype message in the image: `from` → `to`, found exactly
// once (a file of the default format: version-1 datatype messages, no object header checksums).
struct Patch {
  std::vector<std::uint8_t> from, to;
};

std::vector<std::uint8_t> WriteTypedImage(hid_t type, bool attribute, const Patch& patch = {}) {
  std::vector<std::uint8_t> image = ImageOf([&](hid_t file) {
    const hsize_t dims[1] = {4};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    // Zeros of every type but variable-length ones, which stay unwritten (their fill value).
    const bool variable = H5Tget_class(type) == H5T_VLEN || H5Tis_variable_str(type) > 0;
    std::vector<std::uint8_t> zeros(4 * H5Tget_size(type), 0);
    if (attribute) {
      hid_t group = H5Gcreate2(file, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      hid_t attr = H5Acreate2(group, "a", type, space, H5P_DEFAULT, H5P_DEFAULT);
      if (!variable) {
        EXPECT_GE(H5Awrite(attr, type, zeros.data()), 0);
      }
      H5Aclose(attr);
      H5Gclose(group);
    } else {
      hid_t dataset = H5Dcreate2(file, "w", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (!variable) {
        EXPECT_GE(H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()), 0);
      }
      H5Dclose(dataset);
    }
    H5Sclose(space);
  });
  if (!patch.from.empty()) {
    int found = 0;
    for (std::size_t i = 0; i + patch.from.size() <= image.size(); ++i) {
      if (std::equal(patch.from.begin(), patch.from.end(), image.begin() + i)) {
        std::copy(patch.to.begin(), patch.to.end(), image.begin() + i);
        ++found;
      }
    }
    EXPECT_EQ(found, 1) << "the datatype message to change";
  }
  return image;
}

// H5T_IEEE_F32LE's datatype message: class and version, flags (sign at bit 31), size 4,
// bit offset 0, precision 32, exponent at 23 (8 bits), mantissa at 0 (23 bits), bias 127.
const std::vector<std::uint8_t> kFloat32Message = {
    0x11, 0x20, 0x1f, 0x00, 0x04, 0, 0, 0, 0, 0, 0x20, 0x00, 0x17, 0x08, 0x00, 0x17, 0x7f, 0, 0, 0};

std::vector<std::uint8_t> Float32MessageWith(std::size_t at, std::vector<std::uint8_t> bytes) {
  std::vector<std::uint8_t> message = kFloat32Message;
  std::copy(bytes.begin(), bytes.end(), message.begin() + static_cast<std::ptrdiff_t>(at));
  return message;
}

// A copy of `base` of `size` bytes and, when given, `precision` bits.
std::function<hid_t()> Sized(hid_t base, std::size_t size, std::size_t precision = 0) {
  return [=] {
    hid_t t = H5Tcopy(base);
    H5Tset_size(t, size);
    if (precision > 0) H5Tset_precision(t, precision);
    return t;
  };
}

hid_t MakeQuadFloat() {  // IEEE binary128: NumPy on x86-64 has no float this wide
  hid_t t = Sized(H5T_IEEE_F64LE, 16, 128)();
  H5Tset_fields(t, 127, 112, 15, 0, 112);
  H5Tset_ebias(t, 16383);
  return t;
}

hid_t MakeCompoundOfTwoDoubles() {  // members 'a' at 0 and 'b' at 8, 16 bytes
  hid_t t = H5Tcreate(H5T_COMPOUND, 16);
  H5Tinsert(t, "a", 0, H5T_IEEE_F64LE);
  H5Tinsert(t, "b", 8, H5T_IEEE_F64LE);
  return t;
}

// Member 'b' of MakeCompoundOfTwoDoubles(): its name padded to 8 bytes, then its offset.
const std::vector<std::uint8_t> kMemberB = {'b', 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0};

struct TypeCase {
  const char* name;
  std::function<hid_t()> make;
  Patch patch;
  const char* expected;  // in the reason; nullptr: the type loads, the verdict stays ok
};

std::vector<TypeCase> UnloadableTypes() {
  return {
      {"float of 80-bit precision in 4 bytes",
       [] { return H5Tcopy(H5T_IEEE_F32LE); },
       {kFloat32Message, Float32MessageWith(10, {0x50, 0x00})},
       "a float datatype of 80-bit precision in 4 bytes: the datatype is invalid: current libhdf5 "
       "releases, and the h5py built on them, refuse to open it"},
      {"float of no precision",
       [] { return H5Tcopy(H5T_IEEE_F32LE); },
       {kFloat32Message, Float32MessageWith(10, {0x00, 0x00})},
       "a float datatype of 0-bit precision in 4 bytes: the datatype is invalid"},
      {"float with an empty mantissa",
       [] { return H5Tcopy(H5T_IEEE_F32LE); },
       {kFloat32Message, Float32MessageWith(15, {0x00})},
       "a float datatype whose mantissa is empty: the datatype is invalid"},
      {"float whose exponent lies past its bytes",
       [] { return H5Tcopy(H5T_IEEE_F32LE); },
       {kFloat32Message, Float32MessageWith(12, {0x40})},
       "a float datatype whose exponent (bits 64–71) lies outside its value bits (0–31)"},
      {"IEEE quad float",
       MakeQuadFloat,
       {},
       "a float datatype of 16 bytes with 112 mantissa bits and 15 exponent bits (bias 16383): "
       "h5py has no NumPy float type that holds it, so Keras cannot load it"},
      {"float32 with a 16-bit exponent",
       [] {
         hid_t t = H5Tcopy(H5T_IEEE_F32LE);
         H5Tset_fields(t, 31, 15, 16, 0, 15);
         H5Tset_ebias(t, 32767);
         return t;
       },
       {},
       "with 15 mantissa bits and 16 exponent bits (bias 32767)"},
      {"reference of unknown kind",
       [] { return H5Tcopy(H5T_STD_REF_OBJ); },
       {{0x17, 0, 0, 0, 8, 0, 0, 0}, {0x17, 2, 0, 0, 8, 0, 0, 0}},
       "a reference datatype of 8 bytes that is neither an object nor a region reference: h5py "
       "reads only those two"},
      {"3-byte integer",
       Sized(H5T_STD_I32LE, 3),
       {},
       "an integer datatype of 3 bytes: h5py reads integers only as NumPy's"},
      {"16-byte integer", Sized(H5T_STD_I64LE, 16, 128), {}, "an integer datatype of 16 bytes"},
      {"3-byte bitfield", Sized(H5T_STD_B32LE, 3), {}, "a bitfield datatype of 3 bytes"},
      {"enum based on a 3-byte integer",
       [] {
         hid_t base = Sized(H5T_STD_I32LE, 3)();
         hid_t t = H5Tenum_create(base);
         const int zero = 0;
         H5Tenum_insert(t, "ZERO", &zero);
         H5Tclose(base);
         return t;
       },
       {},
       "an enum based on an integer datatype of 3 bytes"},
      {"string in an unknown character set",
       Sized(H5T_C_S1, 7),
       {{0x13, 0x00, 0, 0, 7, 0, 0, 0}, {0x13, 0x50, 0, 0, 7, 0, 0, 0}},
       "a string datatype in character set 5: h5py reads only ASCII and UTF-8 strings"},
      {"time",
       [] { return H5Tcopy(H5T_UNIX_D32LE); },
       {},
       "a time datatype: h5py has no NumPy type for it"},
      {"compound member past its end",
       MakeCompoundOfTwoDoubles,
       {kMemberB, {'b', 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0}},
       "a compound datatype whose member 'b' (bytes 12–19) extends past its 16 bytes"},
      {"compound with two members of one name",
       MakeCompoundOfTwoDoubles,
       {kMemberB, {'a', 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0}},
       "a compound datatype with two members named 'a'"},
      {"compound member name not UTF-8",
       MakeCompoundOfTwoDoubles,
       {kMemberB, {0xff, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0}},
       "a compound datatype with a member name that is not UTF-8"},
      {"compound with a quad float member",
       [] {
         hid_t quad = MakeQuadFloat();
         hid_t t = H5Tcreate(H5T_COMPOUND, 24);
         H5Tinsert(t, "x", 0, H5T_IEEE_F64LE);
         H5Tinsert(t, "y", 8, quad);
         H5Tclose(quad);
         return t;
       },
       {},
       "a compound datatype whose member 'y' is a float datatype of 16 bytes"},
      {"variable-length sequence of quad floats",
       [] {
         hid_t quad = MakeQuadFloat();
         hid_t t = H5Tvlen_create(quad);
         H5Tclose(quad);
         return t;
       },
       {},
       "a variable-length sequence of a float datatype of 16 bytes"},
      {"array of quad floats",
       [] {
         hid_t quad = MakeQuadFloat();
         const hsize_t dims[1] = {3};
         hid_t t = H5Tarray_create2(quad, 1, dims);
         H5Tclose(quad);
         return t;
       },
       {},
       "an array of a float datatype of 16 bytes"},
  };
}

std::vector<TypeCase> LoadableTypes() {
  return {
      {"float32", [] { return H5Tcopy(H5T_IEEE_F32LE); }, {}, nullptr},
      {"big-endian float64", [] { return H5Tcopy(H5T_IEEE_F64BE); }, {}, nullptr},
      {"float16", MakeFloat16, {}, nullptr},
      {"bfloat16", MakeBfloat16, {}, nullptr},
      {"3-byte float (h5py reads it as float32)",
       [] {
         hid_t t = H5Tcopy(H5T_IEEE_F32LE);
         H5Tset_fields(t, 23, 16, 7, 0, 16);
         H5Tset_size(t, 3);
         H5Tset_ebias(t, 63);
         return t;
       },
       {},
       nullptr},
      {"x87 long double", [] { return H5Tcopy(H5T_NATIVE_LDOUBLE); }, {}, nullptr},
      {"n-bit float at bit offset 7 (HDF5's own test files)",
       [] {
         hid_t t = H5Tcopy(H5T_IEEE_F32BE);
         H5Tset_fields(t, 26, 20, 6, 7, 13);
         H5Tset_offset(t, 7);
         H5Tset_precision(t, 20);
         H5Tset_ebias(t, 31);
         return t;
       },
       {},
       nullptr},
      {"12-bit integer in 4 bytes", Sized(H5T_STD_I32LE, 4, 12), {}, nullptr},
      {"uint8", [] { return H5Tcopy(H5T_STD_U8LE); }, {}, nullptr},
      {"int64", [] { return H5Tcopy(H5T_STD_I64BE); }, {}, nullptr},
      {"object reference", [] { return H5Tcopy(H5T_STD_REF_OBJ); }, {}, nullptr},
      {"region reference", [] { return H5Tcopy(H5T_STD_REF_DSETREG); }, {}, nullptr},
      {"fixed-length string", Sized(H5T_C_S1, 7), {}, nullptr},
      {"variable-length UTF-8 string",
       [] {
         hid_t t = H5Tcopy(H5T_C_S1);
         H5Tset_size(t, H5T_VARIABLE);
         H5Tset_cset(t, H5T_CSET_UTF8);
         return t;
       },
       {},
       nullptr},
      {"compound of two doubles", MakeCompoundOfTwoDoubles, {}, nullptr},
      {"enum based on int8",
       [] {
         hid_t t = H5Tenum_create(H5T_STD_I8LE);
         const signed char zero = 0;
         H5Tenum_insert(t, "ZERO", &zero);
         return t;
       },
       {},
       nullptr},
      {"variable-length sequence of float32",
       [] { return H5Tvlen_create(H5T_IEEE_F32LE); },
       {},
       nullptr},
      {"array of float16",
       [] {
         hid_t half = MakeFloat16();
         const hsize_t dims[2] = {2, 3};
         hid_t t = H5Tarray_create2(half, 2, dims);
         H5Tclose(half);
         return t;
       },
       {},
       nullptr},
  };
}

// Writes each case as a dataset and as an attribute and inspects it at `structure` and `full`:
// `ok` where the case expects no reason, else `corrupt` for a reason that names the object and
// says what the case expects.
void ExpectVerdicts(const std::vector<TypeCase>& cases) {
  InitHdf5ErrorHandling();
  for (const TypeCase& type_case : cases) {
    for (bool attribute : {false, true}) {
      SCOPED_TRACE(testing::Message()
                   << type_case.name << (attribute ? ", attribute" : ", dataset"));
      hid_t type = type_case.make();
      ASSERT_GE(type, 0);
      const std::vector<std::uint8_t> image = WriteTypedImage(type, attribute, type_case.patch);
      H5Tclose(type);
      ASSERT_FALSE(image.empty());
      for (Level level : {Level::kStructure, Level::kFull}) {
        const Hdf5Inspection result = Inspect(image, level);
        if (!type_case.expected) {
          EXPECT_EQ(result.verdict, Verdict::kOk) << LevelName(level) << ": " << result.reason;
          continue;
        }
        EXPECT_EQ(result.verdict, Verdict::kCorrupt) << LevelName(level) << ": " << result.reason;
        const std::string object = attribute ? "attribute 'a' of '/g' has " : "dataset '/w' has ";
        EXPECT_EQ(result.reason.rfind(object, 0), 0u) << result.reason;
        EXPECT_NE(result.reason.find(type_case.expected), std::string::npos) << result.reason;
      }
    }
  }
}

// h5py (so Keras) fails on every one of these — tests/h5py_loadability.py shows it for the same
// types — or current libhdf5 refuses them; yet libhdf5 1.10 opens and walks each file without
// an error, and the verdict was `ok`.
TEST(Hdf5InspectorDatatypes, ADatasetOrAttributeOfATypeNoLoaderReadsIsCorruptAtStructureAndFull) {
  ExpectVerdicts(UnloadableTypes());
}

TEST(Hdf5InspectorDatatypes, EveryTypeH5pyReadsStaysOk) { ExpectVerdicts(LoadableTypes()); }

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
