// libFuzzer target: the HDF5 superblock parser (daemon/verify/hdf5/superblock.h) on arbitrary bytes.
//
// The input is a file image. CheckHeader() reads it as a file of its own size, as a complete
// file of the size its superblock claims (zeros past the input), as a file that shrinks while it
// is read, through a reader that returns one byte per call and through one that fails; the input
// is also given to ParseSuperblock() as the bytes at a signature. Beyond "no crash, no sanitizer
// report" it checks what the header's contract promises: a reason for every verdict but ok, the
// same answer whatever the read sizes, and CheckHeader()'s superblock equal to ParseSuperblock()'s.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "verify/hdf5/superblock.h"
#include "verify/verdict.h"

namespace {

using ckptwatch::CheckHeader;
using ckptwatch::HeaderCheck;
using ckptwatch::ParseSuperblock;
using ckptwatch::Superblock;
using ckptwatch::Verdict;

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "superblock_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

struct Image {
  std::span<const std::uint8_t> bytes;
  std::uint64_t file_size;  // May exceed bytes.size(): the rest reads as zeros, or as EOF.
  bool zeros_past_input = true;
  std::size_t max_chunk = ~std::size_t{0};
  int fail_errno = 0;  // Reads at or past the middle of the input fail with this.
};

ckptwatch::ReadAt Reader(const Image& image) {
  return [image](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (image.fail_errno != 0 && offset >= image.bytes.size() / 2) {
      errno = image.fail_errno;
      return -1;
    }
    if (offset >= image.file_size) return 0;
    std::uint64_t left = image.file_size - offset;
    if (n > left) n = static_cast<std::size_t>(left);
    if (n > image.max_chunk) n = image.max_chunk;
    auto* out = static_cast<std::uint8_t*>(buf);
    std::size_t copied = 0;
    if (offset < image.bytes.size()) {
      copied = static_cast<std::size_t>(
          std::min<std::uint64_t>(n, image.bytes.size() - static_cast<std::size_t>(offset)));
      std::memcpy(out, image.bytes.data() + offset, copied);
    }
    if (copied < n) {
      if (!image.zeros_past_input) return static_cast<long>(copied);
      std::memset(out + copied, 0, n - copied);
    }
    return static_cast<long>(n);
  };
}

bool SameSuperblock(const Superblock& a, const Superblock& b) {
  return a.signature_offset == b.signature_offset && a.version == b.version &&
         a.sizeof_offsets == b.sizeof_offsets && a.sizeof_lengths == b.sizeof_lengths &&
         a.base_address == b.base_address && a.eof_address == b.eof_address &&
         a.root_address == b.root_address && a.consistency_flags == b.consistency_flags;
}

bool SameCheck(const HeaderCheck& a, const HeaderCheck& b) {
  if (a.verdict != b.verdict || a.reason != b.reason || a.expected_bytes != b.expected_bytes) {
    return false;
  }
  if (a.superblock.has_value() != b.superblock.has_value()) return false;
  return !a.superblock || SameSuperblock(*a.superblock, *b.superblock);
}

std::string Describe(const HeaderCheck& c) {
  return std::string(ckptwatch::VerdictName(c.verdict)) + ": " + c.reason;
}

// The contract every CheckHeader() result keeps, and agreement with ParseSuperblock().
void CheckResult(const HeaderCheck& check, const Image& image) {
  if ((check.verdict == Verdict::kOk) != check.reason.empty()) {
    Fail("a verdict other than ok needs a reason (and ok has none)", Describe(check));
  }
  if (check.verdict == Verdict::kOk &&
      (!check.superblock || check.expected_bytes != image.file_size)) {
    Fail("ok without a superblock that accounts for every byte", Describe(check));
  }
  if (!check.superblock) return;
  const Superblock& sb = *check.superblock;
  if (check.expected_bytes != sb.ExpectedFileSize()) {
    Fail("expected_bytes is not Superblock::ExpectedFileSize()", Describe(check));
  }
  if (sb.signature_offset >= image.bytes.size()) return;  // Found in the zero tail.
  Superblock direct;
  std::string err;
  const auto at = static_cast<std::size_t>(sb.signature_offset);
  if (image.bytes.size() - at >= 256 &&
      (!ParseSuperblock(image.bytes.subspan(at), sb.signature_offset, &direct, &err) ||
       !SameSuperblock(sb, direct))) {
    Fail("CheckHeader() and ParseSuperblock() disagree", Describe(check) + " / " + err);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);

  Superblock direct;
  std::string err;
  if (ParseSuperblock(bytes, 0, &direct, &err)) {
    if (direct.version < 0 || direct.version > 3) Fail("parsed an unknown version", "");
  } else if (err.empty()) {
    Fail("ParseSuperblock() failed without saying why", "");
  }

  const Image whole{bytes, size};
  const HeaderCheck check = CheckHeader(Reader(whole), size);
  CheckResult(check, whole);

  Image bytewise = whole;
  bytewise.max_chunk = 1;
  if (const HeaderCheck again = CheckHeader(Reader(bytewise), size); !SameCheck(check, again)) {
    Fail("one-byte reads changed the verdict", Describe(check) + " / " + Describe(again));
  }

  Image failing = whole;
  failing.fail_errno = size % 2 == 0 ? EIO : EACCES;
  const HeaderCheck failed = CheckHeader(Reader(failing), size);
  if (failed.verdict != Verdict::kOk && failed.reason.empty()) Fail("no reason", Describe(failed));

  // The file the superblock describes: complete (zeros after the input), then one that ends
  // where the input does although its size said more (it shrank while being read).
  if (check.expected_bytes && *check.expected_bytes != size) {
    const Image complete{bytes, *check.expected_bytes};
    CheckResult(CheckHeader(Reader(complete), complete.file_size), complete);
    Image shrinking = complete;
    shrinking.zeros_past_input = false;
    const HeaderCheck shrunk = CheckHeader(Reader(shrinking), shrinking.file_size);
    if (shrunk.verdict != Verdict::kOk && shrunk.reason.empty()) {
      Fail("no reason", Describe(shrunk));
    }
  }
  return 0;
}
