// libFuzzer target: CheckSafetensors() (daemon/verify/safetensors/safetensors.h) on arbitrary bytes as a file.
//
// The input is read at every level, and again through a reader that returns one byte per call.
// Beyond "no crash, no sanitizer report, no allocation past the fuzzer's RSS limit" it checks the
// contract: a reason for every verdict but ok, the same verdict whatever the read size, counts only
// from levels that got that far, and an ok file accounts for every byte.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "verify/safetensors/safetensors.h"
#include "verify/verdict.h"

namespace {

using ckptwatch::Level;
using ckptwatch::SafetensorsCheck;
using ckptwatch::Verdict;

[[noreturn]] void Fail(const char* what, const SafetensorsCheck& c) {
  std::fprintf(stderr, "safetensors_fuzz: %s: %s: %s\n", what, std::string(ckptwatch::VerdictName(c.verdict)).c_str(),
               c.reason.c_str());
  std::abort();
}

ckptwatch::ReadAt Reader(const std::uint8_t* data, std::size_t size, std::size_t max_chunk) {
  return [=](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (offset >= size) return 0;
    n = std::min({n, size - static_cast<std::size_t>(offset), max_chunk});
    std::memcpy(buf, data + offset, n);
    return static_cast<long>(n);
  };
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (Level level : {Level::kHeader, Level::kStructure, Level::kFull}) {
    const SafetensorsCheck c = ckptwatch::CheckSafetensors(Reader(data, size, ~std::size_t{0}), size, level);
    if ((c.verdict == Verdict::kOk) != c.reason.empty()) Fail("ok needs no reason, anything else one", c);
    if (c.verdict == Verdict::kOk && c.expected_bytes != size) Fail("ok but not every byte accounted for", c);
    if (c.nonfinite.has_value() != (level == Level::kFull && (c.verdict == Verdict::kOk || c.verdict == Verdict::kNonfinite)))
      Fail("a NaN count from a level that did not scan", c);
    const SafetensorsCheck bytewise = ckptwatch::CheckSafetensors(Reader(data, size, 1), size, level);
    if (bytewise.verdict != c.verdict || bytewise.reason != c.reason) Fail("one-byte reads changed the verdict", bytewise);
  }
  return 0;
}
