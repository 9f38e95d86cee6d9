#include "verify/hdf5/raw_scan.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace ckptwatch {
namespace {

constexpr std::uint64_t kAlign = 4096;
// Runs separated by less than this are read as one stretch: the gap (object headers between
// two datasets) costs less to copy than another system call.
constexpr std::uint64_t kMaxGapBytes = 64u << 10;

struct FreeDeleter {
  void operator()(std::uint8_t* p) const { std::free(p); }
};

// The window of the file the buffer holds: [start, start + valid).
struct Window {
  std::uint64_t start = 0;
  std::uint64_t valid = 0;
  bool Holds(std::uint64_t offset, std::uint64_t n) const {
    return offset >= start && offset - start <= valid && n <= valid - (offset - start);
  }
};

}  // namespace

RawScanCounts ScanRawRuns(std::vector<RawRun> runs, std::span<const FloatLayout> layouts,
                          const ReadAt& read_at, std::size_t block_bytes) {
  RawScanCounts out;
  out.nonfinite.assign(layouts.size(), 0);
  out.read_failed.assign(layouts.size(), false);
  std::stable_sort(runs.begin(), runs.end(),
                   [](const RawRun& a, const RawRun& b) { return a.offset < b.offset; });
  // Where the stretch each run belongs to ends: a read never goes past it.
  std::vector<std::uint64_t> stretch_end(runs.size());
  for (std::size_t i = runs.size(); i-- > 0;) {
    const std::uint64_t end = runs[i].offset + runs[i].bytes;
    stretch_end[i] = end;
    if (i + 1 < runs.size() && runs[i + 1].offset <= end + kMaxGapBytes)
      stretch_end[i] = std::max(end, stretch_end[i + 1]);
  }
  // aligned_alloc wants a size that is a multiple of the alignment (ASan refuses any other).
  block_bytes = (std::max<std::size_t>(block_bytes, 2 * kAlign) + kAlign - 1) / kAlign * kAlign;
  std::unique_ptr<std::uint8_t, FreeDeleter> buffer(
      static_cast<std::uint8_t*>(std::aligned_alloc(kAlign, block_bytes)));
  if (!buffer) {
    for (const RawRun& run : runs) out.read_failed[run.owner] = true;
    return out;
  }
  Window window;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const RawRun& run = runs[i];
    const FloatLayout& layout = layouts[run.owner];
    const std::uint64_t element = layout.size;
    if (element == 0 || element > kAlign) continue;
    const std::uint64_t end = run.offset + run.bytes;
    std::uint64_t pos = run.offset;
    while (pos + element <= end) {
      if (!window.Holds(pos, element)) {
        // Refill from the page boundary at or before `pos`: the element the last block cut in
        // two is read again whole.
        const std::uint64_t start = pos / kAlign * kAlign;
        const std::uint64_t want = std::min<std::uint64_t>(block_bytes, stretch_end[i] - start);
        std::uint64_t got = 0;
        bool failed = false;
        while (got < want) {
          long n = read_at(start + got, buffer.get() + got, static_cast<std::size_t>(want - got));
          if (n < 0) failed = true;
          if (n <= 0) break;
          got += static_cast<std::uint64_t>(n);
        }
        window = failed ? Window{} : Window{start, got};
        if (failed) {
          out.read_failed[run.owner] = true;
          break;
        }
        if (!window.Holds(pos, element)) break;  // past the end of the file: zeros
      }
      const std::uint64_t in_window = window.start + window.valid - pos;
      const std::uint64_t count = std::min(end - pos, in_window) / element;
      out.nonfinite[run.owner] += CountNonfinite(layout, buffer.get() + (pos - window.start),
                                                 static_cast<std::size_t>(count));
      pos += count * element;
    }
  }
  return out;
}

}  // namespace ckptwatch
