// How log values are typed in a JSON log, by key. The events themselves are a type:
// LogEvent (log_event.h), whose names docs/logging.md's event table and examples are tested
// against (events_test.cc; tests/daemon_harness.py checks every line a real daemon writes in
// the end-to-end tests).
#pragma once

#include <string_view>

namespace ckptwatch {

/// Keys whose value is a number: a JSON log writes it as one ("bytes":20432), the text log bare.
/// A value that is not a plain decimal number stays a string.
inline constexpr std::string_view kNumberKeys[] = {
    "avail_bytes", "bytes",     "changed", "elapsed_ms",      "expected_bytes",
    "failed",      "failing",   "files",   "last_good_age_s", "last_good_bytes",
    "ok",          "pid",       "queued",  "repeats",         "restart_in_ms",
    "running",     "unchanged", "watches",
};

/// Keys whose value is true or false: a JSON log writes a boolean.
inline constexpr std::string_view kBooleanKeys[] = {"recursive"};

}  // namespace ckptwatch
