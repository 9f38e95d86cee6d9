#include "verify/hdf5/loadable_datatype.h"

#include <cstdint>
#include <limits>
#include <set>

#include "base/text_escape.h"
#include "verify/hdf5/hdf5_handle.h"

namespace ckptwatch {
namespace {

using Problem = std::optional<DatatypeProblem>;

// Deeper nesting (compound, array, variable-length, enum) is refused rather than followed: no
// checkpoint writer produces it, and every level is a recursion here, in libhdf5 and in h5py.
constexpr int kMaxDatatypeDepth = 32;

// libhdf5 1.10 decodes these without a word; current releases check each datatype they decode
// (bit fields inside the value, compound members inside the compound, known reference kinds)
// and refuse the object.
constexpr const char* kInvalid =
    "the datatype is invalid: current libhdf5 releases, and the h5py built on them, refuse to "
    "open it";

std::string Bytes(std::size_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

std::string Noun(H5T_class_t type_class) {
  switch (type_class) {
    case H5T_INTEGER:
      return "an integer datatype";
    case H5T_FLOAT:
      return "a float datatype";
    case H5T_TIME:
      return "a time datatype";
    case H5T_STRING:
      return "a string datatype";
    case H5T_BITFIELD:
      return "a bitfield datatype";
    case H5T_OPAQUE:
      return "an opaque datatype";
    case H5T_COMPOUND:
      return "a compound datatype";
    case H5T_REFERENCE:
      return "a reference datatype";
    case H5T_ENUM:
      return "an enum datatype";
    case H5T_VLEN:
      return "a variable-length datatype";
    case H5T_ARRAY:
      return "an array datatype";
    default:
      return "a datatype of unknown class " + std::to_string(static_cast<int>(type_class));
  }
}

Problem Hdf5Failed(const std::string& what) {
  return DatatypeProblem{what, "libhdf5 cannot describe it: " + TakeHdf5Error().message};
}

// A NumPy float type as h5py's TypeFloatID.py_dtype() weighs it: np.finfo's nmant, maxexp and
// minexp, with the x87 long double's explicit integer bit counted in its mantissa.
struct NumpyFloat {
  std::size_t size;
  std::size_t mantissa_bits;
  std::int64_t max_exponent;
  std::int64_t min_exponent;
};

template <typename T>
constexpr NumpyFloat NumpyFloatOf() {
  using Limits = std::numeric_limits<T>;
  const bool x87 = Limits::digits == 64 && Limits::max_exponent == 16384;
  return {sizeof(T), static_cast<std::size_t>(x87 ? Limits::digits : Limits::digits - 1),
          Limits::max_exponent, Limits::min_exponent - 1};
}

// NumPy's float types, smallest first: h5py takes the first one that holds the file's float.
constexpr NumpyFloat kNumpyFloats[] = {
    {2, 10, 16, -14},  // float16
    NumpyFloatOf<float>(),
    NumpyFloatOf<double>(),
    NumpyFloatOf<long double>(),
};

bool NumpyHasFloatFor(std::size_t size, std::size_t mantissa_bits, std::size_t exponent_bits,
                      std::size_t bias) {
  // h5py compares 2^exponent_bits - bias - 1 with the largest exponent; the bias is 32 bits
  // in the file, so a wider exponent never fits and is not computed.
  if (exponent_bits >= 40 || bias > std::numeric_limits<std::uint32_t>::max()) return false;
  const std::int64_t largest =
      (std::int64_t{1} << exponent_bits) - static_cast<std::int64_t>(bias) - 1;
  const std::int64_t smallest = 1 - static_cast<std::int64_t>(bias);
  for (const NumpyFloat& numpy : kNumpyFloats) {
    if (numpy.size >= size && mantissa_bits <= numpy.mantissa_bits &&
        largest <= numpy.max_exponent && smallest >= numpy.min_exponent)
      return true;
  }
  return false;
}

struct FloatFields {
  std::size_t sign = 0, exponent_pos = 0, exponent_bits = 0, mantissa_pos = 0, mantissa_bits = 0;
};

std::optional<FloatFields> FieldsOf(hid_t float_type) {
  FloatFields f;
  if (H5Tget_fields(float_type, &f.sign, &f.exponent_pos, &f.exponent_bits, &f.mantissa_pos,
                    &f.mantissa_bits) < 0)
    return std::nullopt;
  return f;
}

// The value bits of an integer, bitfield or float lie inside its bytes, and a float's sign,
// exponent and mantissa inside its value bits (positions count from the element's first bit).
Problem CheckBitLayout(hid_t type, H5T_class_t type_class, std::size_t size) {
  const std::size_t precision = H5Tget_precision(type);
  const int offset = H5Tget_offset(type);
  if (offset < 0) return Hdf5Failed(Noun(type_class));
  if (precision == 0 || offset + precision > 8 * size) {
    return DatatypeProblem{
        Noun(type_class) + " of " + std::to_string(precision) + "-bit precision" +
            (offset > 0 ? " at bit offset " + std::to_string(offset) : "") + " in " + Bytes(size),
        kInvalid};
  }
  if (type_class != H5T_FLOAT) return std::nullopt;
  const std::optional<FloatFields> f = FieldsOf(type);
  if (!f) return Hdf5Failed(Noun(type_class));
  const std::size_t low = static_cast<std::size_t>(offset), high = low + precision;
  struct Field {
    const char* name;
    std::size_t pos, bits;
  };
  for (const Field& field :
       {Field{"sign bit", f->sign, 1}, Field{"exponent", f->exponent_pos, f->exponent_bits},
        Field{"mantissa", f->mantissa_pos, f->mantissa_bits}}) {
    if (field.bits > 0 && field.pos >= low && field.pos + field.bits <= high) continue;
    const std::string where = field.bits == 0
                                  ? std::string("is empty")
                                  : "(bits " + std::to_string(field.pos) + "–" +
                                        std::to_string(field.pos + field.bits - 1) +
                                        ") lies outside its value bits (" + std::to_string(low) +
                                        "–" + std::to_string(high - 1) + ")";
    return DatatypeProblem{"a float datatype whose " + std::string(field.name) + " " + where,
                           kInvalid};
  }
  return std::nullopt;
}

Problem CheckCompound(hid_t type, std::size_t size, int depth);

// The bit layout libhdf5 relies on, then the rules by which h5py turns a datatype into a NumPy
// dtype (h5t.pyx, py_dtype()), for `type` and every type nested in it.
Problem CheckForH5py(hid_t type, int depth) {
  if (depth > kMaxDatatypeDepth) {
    return DatatypeProblem{
        "a datatype nested more than " + std::to_string(kMaxDatatypeDepth) + " levels deep",
        "no checkpoint writer produces one, and ckptwatch does not follow it"};
  }
  const H5T_class_t type_class = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  if (type_class == H5T_NO_CLASS || size == 0) return Hdf5Failed("a datatype");
  switch (type_class) {
    case H5T_INTEGER:
    case H5T_BITFIELD:
      if (Problem problem = CheckBitLayout(type, type_class, size)) return problem;
      if (size == 1 || size == 2 || size == 4 || size == 8) return std::nullopt;
      return DatatypeProblem{Noun(type_class) + " of " + Bytes(size),
                             "h5py reads integers only as NumPy's 1-, 2-, 4- and 8-byte "
                             "integers, so Keras cannot load it"};
    case H5T_FLOAT: {
      if (Problem problem = CheckBitLayout(type, type_class, size)) return problem;
      const FloatFields f = *FieldsOf(type);  // CheckBitLayout() has read them
      const std::size_t bias = H5Tget_ebias(type);
      if (NumpyHasFloatFor(size, f.mantissa_bits, f.exponent_bits, bias)) return std::nullopt;
      return DatatypeProblem{"a float datatype of " + Bytes(size) + " with " +
                                 std::to_string(f.mantissa_bits) + " mantissa bits and " +
                                 std::to_string(f.exponent_bits) + " exponent bits (bias " +
                                 std::to_string(bias) + ")",
                             "h5py has no NumPy float type that holds it, so Keras cannot load it"};
    }
    case H5T_STRING: {
      const H5T_cset_t cset = H5Tget_cset(type);
      if (cset == H5T_CSET_ASCII || cset == H5T_CSET_UTF8) return std::nullopt;
      return DatatypeProblem{
          "a string datatype in character set " + std::to_string(static_cast<int>(cset)),
          "h5py reads only ASCII and UTF-8 strings, so Keras cannot load it"};
    }
    case H5T_REFERENCE:
      if (H5Tequal(type, H5T_STD_REF_OBJ) > 0 || H5Tequal(type, H5T_STD_REF_DSETREG) > 0)
        return std::nullopt;
      return DatatypeProblem{"a reference datatype of " + Bytes(size) +
                                 " that is neither an object nor a region reference",
                             "h5py reads only those two (\"Unknown reference type\"), so Keras "
                             "cannot load it"};
    case H5T_OPAQUE:
      return std::nullopt;
    case H5T_COMPOUND:
      return CheckCompound(type, size, depth);
    case H5T_ENUM:
    case H5T_VLEN:
    case H5T_ARRAY: {
      Hid base(H5Tget_super(type), H5Tclose);
      if (!base.valid()) return Hdf5Failed(Noun(type_class));
      Problem problem = CheckForH5py(base.get(), depth + 1);
      if (problem) {
        const char* of = type_class == H5T_ENUM   ? "an enum based on "
                         : type_class == H5T_VLEN ? "a variable-length sequence of "
                                                  : "an array of ";
        problem->what = of + problem->what;
      }
      return problem;
    }
    default:  // H5T_TIME, and classes this libhdf5 does not know
      return DatatypeProblem{
          Noun(type_class),
          "h5py has no NumPy type for it and libhdf5 no native type, so Keras cannot load it"};
  }
}

// h5py builds a NumPy dtype from the compound's members: each inside the compound, its name
// decoded as UTF-8 and unique.
Problem CheckCompound(hid_t type, std::size_t size, int depth) {
  const int members = H5Tget_nmembers(type);
  if (members < 0) return Hdf5Failed("a compound datatype");
  std::set<std::string> names;
  for (unsigned i = 0; i < static_cast<unsigned>(members); ++i) {
    char* raw_name = H5Tget_member_name(type, i);
    if (!raw_name) return Hdf5Failed("a compound datatype");
    const std::string name = raw_name;
    H5free_memory(raw_name);
    Hid member(H5Tget_member_type(type, i), H5Tclose);
    if (!member.valid()) return Hdf5Failed("a compound datatype");
    const std::size_t offset = H5Tget_member_offset(type, i);
    const std::size_t member_size = H5Tget_size(member.get());
    const std::string whose = "a compound datatype whose member '" + name + "'";
    if (offset > size || member_size > size - offset) {
      return DatatypeProblem{whose + " (bytes " + std::to_string(offset) + "–" +
                                 std::to_string(offset + member_size - 1) + ") extends past its " +
                                 Bytes(size),
                             kInvalid};
    }
    if (!IsValidUtf8(name)) {
      return DatatypeProblem{"a compound datatype with a member name that is not UTF-8",
                             "h5py decodes member names as UTF-8, so Keras cannot load it"};
    }
    if (!names.insert(name).second) {
      return DatatypeProblem{"a compound datatype with two members named '" + name + "'",
                             "NumPy needs distinct field names, so Keras cannot load it"};
    }
    if (Problem problem = CheckForH5py(member.get(), depth + 1)) {
      problem->what = whose + " is " + problem->what;
      return problem;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<DatatypeProblem> LoadableDatatypes::Check(hid_t type) {
  if (Problem problem = CheckForH5py(type, 0)) return problem;
  // What a C loader does: read into the native type through libhdf5's conversion path.
  const H5T_class_t type_class = H5Tget_class(type);
  Hid native(H5Tget_native_type(type, H5T_DIR_DEFAULT), H5Tclose);
  if (!native.valid()) {
    return DatatypeProblem{Noun(type_class), "libhdf5 has no native type for it (" +
                                                 TakeHdf5Error().message +
                                                 "), so no loader can read it"};
  }
  if (H5Tequal(type, native.get()) > 0 || conversion_checks_ >= kMaxConversionChecks)
    return std::nullopt;
  ++conversion_checks_;
  H5T_cdata_t* cdata = nullptr;
  if (H5Tfind(type, native.get(), &cdata) == nullptr) {
    return DatatypeProblem{Noun(type_class),
                           "libhdf5 has no conversion from it to its native type (" +
                               TakeHdf5Error().message + "), so no loader can read it"};
  }
  return std::nullopt;
}

}  // namespace ckptwatch
