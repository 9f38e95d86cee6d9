// The events the daemon logs: the one list that docs/logging.md's event table, its examples and
// the code's Log() calls are tested against (events_test.cc; tests/daemon_harness.py checks
// every line a real daemon writes in the end-to-end tests).
//
// Adding an event: one line here, a row and an example line in docs/logging.md.
#pragma once

#include <string_view>

namespace ckptwatch {

/// Every `event=` value a log line can carry, in docs/logging.md's order.
inline constexpr std::string_view kEvents[] = {
    "start",
    "start_failed",
    "config_loaded",
    "hardlinks_unprotected",
    "watch_started",
    "watch_missing",
    "watch_recovered",
    "watch_removed",
    "backend_fallback",
    "watch_failed",
    "verify",
    "verify_deferred",
    "verify_superseded",
    "verify_skipped",
    "not_checkpoint",
    "checkpoint",
    "run_expired",
    "problem",
    "problem_cleared",
    "symlink_outside",
    "symlink_dangling",
    "symlink_skipped",
    "overflow",
    "rescan",
    "queue_full",
    "state_restored",
    "state_ignored",
    "state_write_failed",
    "state_written",
    "scan_skipped",
    "scan_failed",
    "loop_error",
    "status_unavailable",
    "verifier_restarted",
    "summary",
    "reload",
    "reload_failed",
    "log_reopened",
    "log_reopen_failed",
    "stop",
    "stopped",
};

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
