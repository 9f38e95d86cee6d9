// libFuzzer target: the PyTorch checkpoint readers (daemon/verify/torch/torch_checkpoint.h) and format
// detection (format_detect.h) on arbitrary bytes as a file.
//
// The input is read as a torch.save zip (CheckTorchZip: our own end-record and central-directory
// parser, the pickle reader on data.pkl, zlib for deflated entries) and as a legacy file
// (CheckTorchLegacy: a chain of pickles, then storage records), at every level. Beyond "no crash,
// no sanitizer report, bounded memory" it checks: a reason for every verdict but ok, NaN counts
// only at full, and that an ok legacy file or zip is the one DetectFormat() names.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "verify/format_detect.h"
#include "verify/torch/pickle_reader.h"
#include "verify/torch/torch_checkpoint.h"
#include "verify/verdict.h"

namespace {

using ckptwatch::Level;
using ckptwatch::TorchCheck;
using ckptwatch::Verdict;

[[noreturn]] void Fail(const char* what, const TorchCheck& c) {
  std::fprintf(stderr, "torch_fuzz: %s: %s: %s\n", what, std::string(ckptwatch::VerdictName(c.verdict)).c_str(),
               c.reason.c_str());
  std::abort();
}

void Check(const TorchCheck& c, Level level) {
  if ((c.verdict == Verdict::kOk) != c.reason.empty()) Fail("ok needs no reason, anything else one", c);
  if (c.nonfinite && level != Level::kFull) Fail("a NaN count below full", c);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ckptwatch::ReadAt read_at = [=](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (offset >= size) return 0;
    n = std::min(n, size - static_cast<std::size_t>(offset));
    std::memcpy(buf, data + offset, n);
    return static_cast<long>(n);
  };
  const ckptwatch::FileFormat format = size ? ckptwatch::DetectFormat(read_at, size) : ckptwatch::FileFormat::kUnknown;
  for (Level level : {Level::kHeader, Level::kStructure, Level::kFull}) {
    const TorchCheck zip = ckptwatch::CheckTorchZip(read_at, size, level);
    Check(zip, level);
    // A file that starts with the HDF5 signature is HDF5 to detection (and to h5py) whatever a
    // zip directory at its end says; the zip check only ever runs on files detected as zips.
    if (zip.verdict == Verdict::kOk && format != ckptwatch::FileFormat::kTorchZip &&
        format != ckptwatch::FileFormat::kTorchScript && format != ckptwatch::FileFormat::kHdf5)
      Fail("an ok torch zip that detection does not call one", zip);
    const TorchCheck legacy = ckptwatch::CheckTorchLegacy(read_at, size, level);
    Check(legacy, level);
    if (legacy.verdict == Verdict::kOk && format != ckptwatch::FileFormat::kTorchLegacy)
      Fail("an ok legacy file that detection does not call one", legacy);
  }
  // The pickle reader alone, from the first byte: bounded whatever the input.
  ckptwatch::PickleLimits limits;
  limits.memory_bytes = 64u << 20;
  ckptwatch::ReadPickle(read_at, 0, size, limits);
  return 0;
}
