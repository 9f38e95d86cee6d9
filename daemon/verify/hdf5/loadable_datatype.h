// Can a loader turn a dataset's or attribute's datatype into values in memory?
//
// libhdf5 1.10 decodes datatypes without checking them, and h5py (what Keras loads through)
// maps each one to a NumPy dtype by rules of its own: a file can open and walk cleanly yet hold
// a datatype neither reads. Call only inside the verifier child, like anything that walks a file.
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <optional>
#include <string>

namespace ckptwatch {

/// Why a datatype cannot be loaded, for a reason sentence:
/// "<object> has <what>: <why>".
struct DatatypeProblem {
  std::string what;  ///< e.g. "a float datatype of 80-bit precision in 4 bytes"
  std::string why;   ///< which loader fails, and why
};

/// Checks the datatypes of one file's datasets and attributes.
class LoadableDatatypes {
 public:
  /// A problem when `type` (a file datatype) cannot be loaded: its bits do not fit its size;
  /// h5py has no NumPy type for it (a float no NumPy float can hold, an integer or bitfield
  /// not of 1, 2, 4 or 8 bytes, a string in neither ASCII nor UTF-8, a reference other than
  /// an object or region reference, a time type, a compound member outside the compound or
  /// named twice or not in UTF-8), at any nesting depth up to 32; or libhdf5 has no native
  /// type for it, or (for the first kMaxConversionChecks non-native types) no conversion path
  /// to that type.
  std::optional<DatatypeProblem> Check(hid_t type);

 private:
  // libhdf5 keeps every conversion path it is asked for until the process exits: a hostile
  // file of a million distinct float types must not make it build a million (unbounded,
  // 30,000 datasets of distinct types cost the walk 34 MB and 40% more time).
  static constexpr std::size_t kMaxConversionChecks = 1000;
  std::size_t conversion_checks_ = 0;
};

}  // namespace ckptwatch
