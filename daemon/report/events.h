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

}  // namespace ckptwatch
