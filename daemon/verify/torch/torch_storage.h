// What the bytes of a torch storage are: element size and how to count NaN/±Inf in them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ckptwatch {

/// Counts NaN/±Inf in a storage's bytes as they arrive in pieces of any size: an element split
/// between two pieces is counted once whole.
class StorageScanner {
 public:
  /// For storage type `type` ("FloatStorage", "BFloat16Storage", ...); integer and unknown types
  /// count nothing.
  explicit StorageScanner(const std::string& type);
  void Add(const std::uint8_t* data, std::size_t n);
  std::uint64_t nonfinite() const { return nonfinite_; }

 private:
  void Count(const std::uint8_t* data, std::size_t elements);
  enum class Kind { kNone, kIeee, kByteMask } kind_ = Kind::kNone;
  std::size_t size_ = 1, exponent_pos_ = 0, exponent_bits_ = 0;
  std::uint8_t byte_mask_ = 0;
  std::uint8_t carry_[16] = {};
  std::size_t carried_ = 0;
  std::uint64_t nonfinite_ = 0;
};

/// " names its storages by text persistent ids (...): torch.load fails with AssertionError",
/// the reason for a pickle that torch.save wrote with pickle_protocol=0.
std::string TextPersistentIdsReason();

/// "; loading needs these classes importable: a, b (torch.load(weights_only=True) refuses
/// them)" for a non-empty list (at most 10 named), "" otherwise.
std::string ForeignGlobalsNote(const std::vector<std::string>& globals);

}  // namespace ckptwatch
