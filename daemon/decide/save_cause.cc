#include "decide/save_cause.h"

#include <algorithm>
#include <cstdio>

namespace ckptwatch {
namespace {

// Below this a filesystem is full for any checkpoint: 1 MiB or 0.1 % of it.
std::uint64_t NearZero(const FsSpace& space) {
  return std::max<std::uint64_t>(std::uint64_t{1} << 20, space.size / 1000);
}

}  // namespace

std::string HumanBytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

SaveCause ClassifyFailure(const VerifyResult& result, const FsSpace& space,
                          const std::optional<SpaceThreshold>& min_free) {
  SaveCause cause{std::string(VerdictName(result.verdict)), ""};
  if (result.verdict != Verdict::kTruncated && result.verdict != Verdict::kEmpty &&
      result.verdict != Verdict::kCorrupt && result.verdict != Verdict::kInProgress)
    return cause;
  const std::uint64_t missing = result.expected_bytes && *result.expected_bytes > result.bytes
                                    ? *result.expected_bytes - result.bytes
                                    : 0;
  std::string why;
  if (missing > 0 && space.avail < missing)
    why = "only " + HumanBytes(space.avail) + " free, less than the " + HumanBytes(missing) +
          " the file is missing";
  else if (min_free && space.avail < min_free->BytesOf(space.size))
    why = "only " + HumanBytes(space.avail) + " free, below min_free " + FormatSpaceThreshold(*min_free);
  else if (space.avail < NearZero(space))
    why = "the filesystem is full (" + HumanBytes(space.avail) + " free of " + HumanBytes(space.size) + ")";
  if (why.empty()) return cause;
  if (!space.quota.empty()) why = space.quota + ": " + why;
  return {"disk_full", why + " when the save ended: it ran out of space (ENOSPC); free space on "
                             "the checkpoint filesystem before the next save"};
}

std::string LowSpaceReason(const FsSpace& space, const std::optional<SpaceThreshold>& min_free,
                           std::uint64_t last_good_bytes) {
  if (min_free && space.avail < min_free->BytesOf(space.size))
    return HumanBytes(space.avail) + " free, below min_free " + FormatSpaceThreshold(*min_free);
  // Integer 1.5x without overflow.
  if (last_good_bytes > 0 && space.avail < last_good_bytes + last_good_bytes / 2)
    return HumanBytes(space.avail) + " free, less than 1.5x the last good checkpoint (" +
           HumanBytes(last_good_bytes) + "): the next save will not fit";
  return "";
}

}  // namespace ckptwatch
