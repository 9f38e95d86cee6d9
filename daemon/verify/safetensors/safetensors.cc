#include "verify/safetensors/safetensors.h"

#include <algorithm>
#include <cctype>
#include <array>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "verify/byte_reader.h"
#include "verify/nonfinite_scan.h"
#include "verify/verdict.h"

namespace ckptwatch {
namespace {

// How a dtype is laid out and how its NaN/Inf look (safetensors' Dtype, bitsize()).
struct Dtype {
  std::string_view name;
  std::uint8_t bits;
  enum Scan : std::uint8_t { kNone, kIeee, kByteMask } scan = kNone;
  FloatLayout layout{};        // kIeee
  std::uint8_t byte_mask = 0;  // kByteMask
};

constexpr std::array<Dtype, 20> kDtypes = {{
    {"BOOL", 8},  {"U8", 8},  {"I8", 8},   {"I16", 16}, {"U16", 16}, {"I32", 32}, {"U32", 32},
    {"I64", 64},  {"U64", 64}, {"C64", 64, Dtype::kIeee, {4, 23, 8}},
    {"F64", 64, Dtype::kIeee, {8, 52, 11}}, {"F32", 32, Dtype::kIeee, {4, 23, 8}},
    {"F16", 16, Dtype::kIeee, {2, 10, 5}},  {"BF16", 16, Dtype::kIeee, {2, 7, 8}},
    // E4M3 is the "fn" variant (no infinities; S.1111.111 is its only NaN); E8M0's NaN is 0xff.
    {"F8_E5M2", 8, Dtype::kByteMask, {}, 0x7c}, {"F8_E4M3", 8, Dtype::kByteMask, {}, 0x7f},
    {"F8_E8M0", 8, Dtype::kByteMask, {}, 0xff},
    // Sub-byte floats have no NaN or Inf encodings.
    {"F4", 4}, {"F6_E2M3", 6}, {"F6_E3M2", 6},
}};

const Dtype* FindDtype(std::string_view name) {
  for (const Dtype& d : kDtypes)
    if (d.name == name) return &d;
  return nullptr;
}

struct Tensor {
  std::string name;
  const Dtype* dtype = nullptr;
  std::uint64_t elements = 1;
  bool overflow = false;
  std::uint64_t begin = 0, end = 0;
  int offsets_seen = 0;
  bool has_dtype = false, has_shape = false;
};

// Builds the tensor list straight from parse events: no DOM, so a header of a million tensors
// costs one compact entry each. Rejects what the reference's serde model would not accept.
class HeaderSax {
 public:
  using json = nlohmann::json;
  std::vector<Tensor> tensors;
  std::uint64_t metadata_entries = 0;
  std::string error;

  bool null() { return Scalar("null", true); }
  bool boolean(bool) { return Scalar("a boolean", false); }
  bool number_integer(json::number_integer_t v) {
    if (v < 0) return Fail("a negative number in " + Where());
    return number_unsigned(static_cast<json::number_unsigned_t>(v));
  }
  bool number_unsigned(json::number_unsigned_t v) {
    if (depth_ == 3 && field_ == Field::kShape) {
      Tensor& t = tensors.back();
      if (v != 0 && t.elements > UINT64_MAX / v) t.overflow = true;
      t.elements *= v;
      return true;
    }
    if (depth_ == 3 && field_ == Field::kOffsets) {
      Tensor& t = tensors.back();
      if (t.offsets_seen >= 2) return Fail("data_offsets of " + t.name + " has more than two numbers");
      (t.offsets_seen++ == 0 ? t.begin : t.end) = v;
      return true;
    }
    return Scalar("a number", false);
  }
  bool number_float(json::number_float_t, const json::string_t&) { return Scalar("a fractional number", false); }
  bool string(json::string_t& s) {
    if (depth_ == 2 && in_metadata_) return ++metadata_entries, true;
    if (depth_ == 2 && field_ == Field::kDtype) {
      Tensor& t = tensors.back();
      t.dtype = FindDtype(s);
      if (!t.dtype) return Fail("tensor " + t.name + " has dtype \"" + s.substr(0, 32) + "\", which safetensors does not define");
      t.has_dtype = true;
      return true;
    }
    return Scalar("a string", false);
  }
  bool binary(json::binary_t&) { return Fail("binary data"); }
  bool start_object(std::size_t) {
    ++depth_;
    if (depth_ == 1) return true;
    if (depth_ == 2 && (in_metadata_ || !tensors.empty())) return true;
    return Fail("an object in " + Where());
  }
  bool end_object() {
    if (depth_ == 2 && !in_metadata_) {
      const Tensor& t = tensors.back();
      if (!t.has_dtype || !t.has_shape || t.offsets_seen != 2)
        return Fail("tensor " + t.name + " lacks dtype, shape or data_offsets");
    }
    --depth_;
    field_ = Field::kOther;
    return true;
  }
  bool start_array(std::size_t) {
    ++depth_;
    if (depth_ == 3 && field_ == Field::kShape) return tensors.back().has_shape = true, true;
    if (depth_ == 3 && field_ == Field::kOffsets) return true;
    return Fail("an array in " + Where());
  }
  bool end_array() {
    if (field_ == Field::kOffsets && tensors.back().offsets_seen != 2)
      return Fail("data_offsets of " + tensors.back().name + " is not two numbers");
    --depth_;
    return true;
  }
  bool key(json::string_t& k) {
    if (depth_ == 1) {
      in_metadata_ = k == "__metadata__";
      if (in_metadata_) return !seen_metadata_ ? (seen_metadata_ = true) : Fail("__metadata__ twice");
      if (!names_.insert(k).second) return Fail("tensor " + k.substr(0, 256) + " twice");
      tensors.push_back({});
      tensors.back().name = k;
      return true;
    }
    if (depth_ == 2 && !in_metadata_) {
      field_ = k == "dtype" ? Field::kDtype : k == "shape" ? Field::kShape
             : k == "data_offsets" ? Field::kOffsets : Field::kOther;
    }
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) {
    return Fail("invalid JSON at byte " + std::to_string(position) + " of the header");
  }

 private:
  enum class Field { kOther, kDtype, kShape, kOffsets };
  bool Fail(std::string why) {
    if (error.empty()) error = std::move(why);
    return false;
  }
  // A scalar where the format has none; `null` is accepted as a whole __metadata__.
  bool Scalar(const char* what, bool is_null) {
    if (depth_ == 1 && in_metadata_ && is_null) return true;
    if (depth_ == 2 && !in_metadata_ && field_ == Field::kOther) return true;  // Unknown fields: ignored.
    return Fail(std::string(what) + " in " + Where());
  }
  std::string Where() const {
    if (in_metadata_) return "__metadata__ (a map of strings to strings)";
    if (depth_ <= 1) return "the header's top level (tensor name -> {dtype, shape, data_offsets})";
    return "tensor " + tensors.back().name.substr(0, 256);
  }

  int depth_ = 0;
  bool in_metadata_ = false, seen_metadata_ = false;
  Field field_ = Field::kOther;
  std::unordered_set<std::string> names_;
};

std::string Num(std::uint64_t n) { return std::to_string(n); }

}  // namespace

bool LooksLikeSafetensors(const std::uint8_t* head, std::size_t n) {
  if (n < 9) return false;
  // Lengths past the reader's limit still identify the format (so the verdict can say the header
  // is too large), but not absurd ones: those are other binary data with a '{' at byte 8.
  const std::uint64_t length = LoadLe(head, 8);
  const bool json_starts = n == 9 || head[9] == '"' || head[9] == '}' || std::isspace(head[9]);
  return length >= 2 && length < (std::uint64_t{1} << 40) && head[8] == '{' && json_starts;
}

SafetensorsCheck CheckSafetensors(const ReadAt& read_at, std::uint64_t file_size, Level level) {
  SafetensorsCheck check;
  ByteReader file(read_at, file_size);
  auto fail = [&](Verdict verdict, std::string reason) {
    check.verdict = verdict;
    check.reason = std::move(reason);
    return std::move(check);
  };
  std::string err;
  std::uint8_t length_bytes[8];
  if (file_size < 8)
    return fail(Verdict::kTruncated, "file is " + Num(file_size) + " bytes, shorter than the safetensors header length " + kCutShortHint);
  if (!file.Read(0, length_bytes, 8, &err)) return fail(Verdict::kCorrupt, err);
  const std::uint64_t header_len = LoadLe(length_bytes, 8);
  if (header_len > kMaxSafetensorsHeader)
    return fail(Verdict::kCorrupt, "safetensors header length is " + Num(header_len) + " bytes, above the " +
                                       Num(kMaxSafetensorsHeader) + " the reader accepts (HeaderTooLarge)");
  if (header_len > file_size - 8) {
    check.expected_bytes = 8 + header_len;
    return fail(Verdict::kTruncated, "file ends at " + Num(file_size) + " bytes, inside its " + Num(header_len) +
                                         "-byte safetensors header " + kCutShortHint + ": loading fails with InvalidHeaderLength");
  }
  std::vector<std::uint8_t> header;
  if (!file.ReadVector(8, static_cast<std::size_t>(header_len), &header, &err)) return fail(Verdict::kCorrupt, err);
  if (header.empty() || header[0] != '{')
    return fail(Verdict::kCorrupt, "safetensors header does not start with '{' (InvalidHeaderStart)");
  // The reference parses the header as one UTF-8 JSON document; trailing spaces pad it.
  HeaderSax sax;
  if (!nlohmann::json::sax_parse(header.begin(), header.end(), &sax, nlohmann::json::input_format_t::json, true))
    return fail(Verdict::kCorrupt, "safetensors header is not what the format allows: " +
                                       (sax.error.empty() ? std::string("invalid JSON") : sax.error) +
                                       " (InvalidHeaderDeserialization)");
  header.clear();
  header.shrink_to_fit();
  check.tensors = sax.tensors.size();
  check.metadata_entries = sax.metadata_entries;

  const std::uint64_t data_start = 8 + header_len;
  const std::uint64_t data_size = file_size - data_start;
  std::uint64_t data_end = 0;
  for (const Tensor& t : sax.tensors) {
    if (t.overflow) return fail(Verdict::kCorrupt, "tensor " + t.name + "'s shape overflows (ValidationOverflow)");
    data_end = std::max(data_end, t.end);
    check.parameters += t.elements;
  }
  check.expected_bytes = data_start + data_end;
  if (data_end > data_size)
    return fail(Verdict::kTruncated, "file ends at " + Num(file_size) + " bytes but its safetensors header places tensor data up to " +
                                         Num(data_start + data_end) + " " + kCutShortHint +
                                         ": loading fails with MetadataIncompleteBuffer");
  if (level == Level::kHeader) {
    check.verdict = data_end == data_size ? Verdict::kOk : Verdict::kCorrupt;
    if (data_end != data_size)
      check.reason = "file is " + Num(data_size - data_end) + " bytes longer than its safetensors header accounts for (MetadataIncompleteBuffer)";
    return check;
  }

  // As the reference's validate(): sorted by offsets, each range starts where the previous
  // ended, holds exactly dtype x shape, and the last one ends the file.
  std::vector<const Tensor*> order;
  order.reserve(sax.tensors.size());
  for (const Tensor& t : sax.tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const Tensor* a, const Tensor* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  std::uint64_t at = 0;
  for (const Tensor* t : order) {
    if (t->begin != at || t->end < t->begin)
      return fail(Verdict::kCorrupt, "tensor " + t->name + " occupies bytes [" + Num(t->begin) + ", " + Num(t->end) +
                                         ") of the data but the previous tensor ends at " + Num(at) +
                                         ": ranges must tile the data region (InvalidOffset)");
    const std::uint64_t bits = t->dtype->bits;
    if (t->elements > UINT64_MAX / bits)
      return fail(Verdict::kCorrupt, "tensor " + t->name + "'s size overflows (ValidationOverflow)");
    if (t->elements * bits % 8 != 0)
      return fail(Verdict::kCorrupt, "tensor " + t->name + " does not fill whole bytes (MisalignedSlice)");
    if (t->end - t->begin != t->elements * bits / 8)
      return fail(Verdict::kCorrupt, "tensor " + t->name + " is " + std::string(t->dtype->name) + " with " +
                                         Num(t->elements) + " elements (" + Num(t->elements * bits / 8) +
                                         " bytes) but its range holds " + Num(t->end - t->begin) + " (TensorInvalidInfo)");
    at = t->end;
  }
  if (at != data_size)
    return fail(Verdict::kCorrupt, "file is " + Num(data_size - at) +
                                       " bytes longer than its safetensors tensors account for (MetadataIncompleteBuffer)");
  if (level != Level::kFull) return check.verdict = Verdict::kOk, std::move(check);

  // Every byte, tensor by tensor in file order, through one buffer; pieces hold whole elements.
  // 256 KiB: the piece just copied from the page cache is still in L2 when it is scanned.
  constexpr std::size_t kChunk = 256u << 10;
  std::vector<std::uint8_t> buf(kChunk);
  std::uint64_t nonfinite = 0;
  const Tensor* first_bad = nullptr;
  for (const Tensor* t : order) {
    const Dtype& d = *t->dtype;
    const std::size_t unit = d.scan == Dtype::kIeee ? d.layout.size : 1;
    const std::size_t piece_max = kChunk - kChunk % unit;
    for (std::uint64_t off = t->begin; off < t->end;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(piece_max, t->end - off));
      if (!file.Read(data_start + off, buf.data(), n, &err))
        return fail(Verdict::kCorrupt, "tensor " + t->name + " cannot be read: " + err);
      std::uint64_t found = 0;
      if (d.scan == Dtype::kIeee) found = CountNonfinite(d.layout, buf.data(), n / unit);
      else if (d.scan == Dtype::kByteMask) found = CountBytesWithMask(buf.data(), n, d.byte_mask);
      if (found && !first_bad) first_bad = t;
      nonfinite += found;
      off += n;
    }
  }
  check.nonfinite = nonfinite;
  if (nonfinite)
    return fail(Verdict::kNonfinite, Num(nonfinite) + " NaN/Inf value" + (nonfinite == 1 ? "" : "s") +
                                         " in float tensors, the first in " + first_bad->name +
                                         ": training diverged before this save");
  check.verdict = Verdict::kOk;
  return check;
}

}  // namespace ckptwatch
