// libFuzzer target: ReadKerasArchive() (daemon/verify/keras/keras_zip.h) on arbitrary bytes as a .keras file.
//
// ReadKerasArchive() reads a descriptor, so the input goes into a memfd: no temporary files,
// nothing left behind. It is read at kFull (every entry's
// CRC) with a budget that holds small weights, and at kStructure with a tiny budget so the
// streamed over-budget path runs too. libzip is not instrumented for coverage but is linked as
// the daemon links it: what is fuzzed is our use of it.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "verify/keras/keras_zip.h"
#include "verify/verdict.h"

namespace {

using ckptwatch::KerasArchive;
using ckptwatch::Level;
using ckptwatch::Verdict;

[[noreturn]] void Fail(const char* what, const KerasArchive& archive) {
  std::fprintf(stderr, "keras_zip_fuzz: %s: %s: %s\n", what,
               std::string(ckptwatch::VerdictName(archive.verdict)).c_str(),
               archive.reason.c_str());
  std::abort();
}

// What ReadKerasArchive() promises: a reason for every verdict but ok, weights held only
// within the budget, custom class names sorted and unique.
void CheckArchive(const KerasArchive& archive, std::uint64_t budget) {
  if ((archive.verdict == Verdict::kOk) != archive.reason.empty()) {
    Fail("a verdict other than ok needs a reason (and ok has none)", archive);
  }
  if (archive.weights.size() > budget) Fail("weights held beyond the memory budget", archive);
  if (archive.weights_over_budget && !archive.weights.empty()) {
    Fail("over-budget weights were kept", archive);
  }
  const auto& classes = archive.keras.custom_classes;
  if (!std::is_sorted(classes.begin(), classes.end()) ||
      std::adjacent_find(classes.begin(), classes.end()) != classes.end()) {
    Fail("custom classes are not sorted and unique", archive);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const int fd = [] {
    const int fd = memfd_create("keras_zip_fuzz", MFD_CLOEXEC);
    if (fd < 0) {
      std::perror("keras_zip_fuzz: memfd_create");
      std::abort();
    }
    return fd;
  }();

  if (ftruncate(fd, 0) != 0) std::abort();
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) std::abort();
    done += static_cast<std::size_t>(n);
  }

  constexpr std::uint64_t kBudget = 1 << 20;
  CheckArchive(ckptwatch::ReadKerasArchive(fd, Level::kFull, kBudget), kBudget);
  constexpr std::uint64_t kTinyBudget = 16;
  CheckArchive(ckptwatch::ReadKerasArchive(fd, Level::kStructure, kTinyBudget), kTinyBudget);
  return 0;
}
