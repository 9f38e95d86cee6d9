// One line per log.repeat_every for a failure that repeats (repeat_limit.h).
#include "decide/repeat_limit.h"

#include <cstdio>
#include <ctime>

namespace ckptwatch {
namespace {

// "14:05" (UTC, as the log's timestamps) for "again, ×N since 14:05".
std::string ClockTime(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[16];
  std::snprintf(text, sizeof text, "%02d:%02d", utc.tm_hour, utc.tm_min);
  return text;
}

}  // namespace

bool LimitRepeat(std::optional<PathRecord::Repeat>& repeat, const std::string& key,
                 PathRecord::Clock::time_point now, double unix_now,
                 std::chrono::milliseconds every, std::string* note) {
  if (!repeat) repeat = PathRecord::Repeat{};
  PathRecord::Repeat& r = *repeat;
  // Another failure (or the first) starts a new series, said in full.
  if (r.key != key) {
    r = {key, unix_now, 1, now};
    return false;
  }
  ++r.count;
  if (every.count() > 0 && now - r.last_logged < every) return true;
  r.last_logged = now;
  *note = "(again, ×" + std::to_string(r.count) + " since " + ClockTime(r.first_unix) + ")";
  return false;
}

}  // namespace ckptwatch
