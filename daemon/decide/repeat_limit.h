// The same file failing the same way again — an in-place rewrite each epoch on a full disk —
// is one log line per log.repeat_every with a count, not one line per save. The count lives in
// the file's PathRecord (one record per path), so it goes when the path is forgotten.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "decide/path_record.h"

namespace ckptwatch {

/// Counts a failure `key` ("verdict/cause") of one file at `now` (`unix_now` on the wall clock)
/// into `repeat`, that file's failures so far. True when its line is left out: the same failure
/// again within `every` of the last line said (`every` 0: never left out). Otherwise the line
/// goes, and when it is a repeat `*note` says "(again, ×N since 14:05)"; a first leaves it.
bool LimitRepeat(std::optional<PathRecord::Repeat>& repeat, const std::string& key,
                 PathRecord::Clock::time_point now, double unix_now,
                 std::chrono::milliseconds every, std::string* note);

}  // namespace ckptwatch
