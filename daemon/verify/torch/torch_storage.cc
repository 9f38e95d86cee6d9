#include "verify/torch/torch_storage.h"

#include <algorithm>
#include <cstring>

#include "verify/nonfinite_scan.h"

namespace ckptwatch {

StorageScanner::StorageScanner(const std::string& type) {
  struct Layout {
    const char* type;
    std::size_t size, exponent_pos, exponent_bits;
  };
  // Complex storages are pairs of their real type: each half counts.
  static constexpr Layout kIeee[] = {
      {"FloatStorage", 4, 23, 8},        {"DoubleStorage", 8, 52, 11}, {"HalfStorage", 2, 10, 5},
      {"BFloat16Storage", 2, 7, 8},      {"ComplexFloatStorage", 4, 23, 8},
      {"ComplexDoubleStorage", 8, 52, 11}};
  for (const Layout& l : kIeee) {
    if (type == l.type) {
      kind_ = Kind::kIeee;
      size_ = l.size;
      exponent_pos_ = l.exponent_pos;
      exponent_bits_ = l.exponent_bits;
    }
  }
  if (type == "Float8_e5m2Storage") kind_ = Kind::kByteMask, byte_mask_ = 0x7c;
  if (type == "Float8_e4m3fnStorage") kind_ = Kind::kByteMask, byte_mask_ = 0x7f;
}

void StorageScanner::Count(const std::uint8_t* data, std::size_t elements) {
  if (kind_ == Kind::kIeee)
    nonfinite_ += CountNonfinite({size_, exponent_pos_, exponent_bits_}, data, elements);
  else if (kind_ == Kind::kByteMask)
    nonfinite_ += CountBytesWithMask(data, elements, byte_mask_);
}

void StorageScanner::Add(const std::uint8_t* data, std::size_t n) {
  if (kind_ == Kind::kNone) return;
  if (carried_ > 0) {
    const std::size_t take = std::min(size_ - carried_, n);
    std::memcpy(carry_ + carried_, data, take);
    carried_ += take;
    data += take;
    n -= take;
    if (carried_ < size_) return;
    Count(carry_, 1);
    carried_ = 0;
  }
  Count(data, n / size_);
  carried_ = n % size_;
  std::memcpy(carry_, data + n - carried_, carried_);
}

std::string TextPersistentIdsReason() {
  return " names its storages by text persistent ids (torch.save with pickle_protocol=0): "
         "torch.load fails with AssertionError";
}

std::string ForeignGlobalsNote(const std::vector<std::string>& globals) {
  if (globals.empty()) return "";
  constexpr std::size_t kNamed = 10;
  std::string text = "; loading needs these classes importable: ";
  for (std::size_t i = 0; i < globals.size() && i < kNamed; ++i) text += (i ? ", " : "") + globals[i];
  if (globals.size() > kNamed) text += " and " + std::to_string(globals.size() - kNamed) + " more";
  return text + " (torch.load(weights_only=True) refuses them)";
}

}  // namespace ckptwatch
