// Datatypes a loader cannot read (loadable_datatype.h), through the inspector: each written by
// libhdf5 into memory as a dataset and as an attribute, and inspected as an image.
#include "verify/hdf5/loadable_datatype.h"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "verify/hdf5/hdf5_handle.h"
#include "verify/hdf5/hdf5_inspector.h"
#include "verify/hdf5/hdf5_test_images.h"

namespace ckptwatch {
namespace {

using hdf5_images::ImageOf;
using hdf5_images::Inspect;
using hdf5_images::MakeBfloat16;
using hdf5_images::MakeFloat16;

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
      SCOPED_TRACE(::testing::Message()
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

}  // namespace
}  // namespace ckptwatch
