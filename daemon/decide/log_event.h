// The events the daemon logs, as a type: the `event=` value of every log line is the name of
// one LogEvent, generated from this one list (docs/logging.md's event table follows its order;
// report/events_test.cc checks it). Adding an event: one row here, a row and an example line
// in docs/logging.md.
#pragma once

#include <cstddef>
#include <string_view>

namespace ckptwatch {

// X(enumerator, event name), in docs/logging.md's order.
#define CKPTWATCH_LOG_EVENTS(X)                   \
  X(kStart, start)                                \
  X(kStartFailed, start_failed)                   \
  X(kConfigLoaded, config_loaded)                 \
  X(kHardlinksUnprotected, hardlinks_unprotected) \
  X(kWatchStarted, watch_started)                 \
  X(kWatchMissing, watch_missing)                 \
  X(kWatchRecovered, watch_recovered)             \
  X(kWatchRemoved, watch_removed)                 \
  X(kBackendFallback, backend_fallback)           \
  X(kWatchFailed, watch_failed)                   \
  X(kVerify, verify)                              \
  X(kVerifyDeferred, verify_deferred)             \
  X(kVerifySuperseded, verify_superseded)         \
  X(kVerifySkipped, verify_skipped)               \
  X(kNotCheckpoint, not_checkpoint)               \
  X(kCheckpoint, checkpoint)                      \
  X(kRunExpired, run_expired)                     \
  X(kProblem, problem)                            \
  X(kProblemCleared, problem_cleared)             \
  X(kSymlinkOutside, symlink_outside)             \
  X(kSymlinkDangling, symlink_dangling)           \
  X(kSymlinkSkipped, symlink_skipped)             \
  X(kOverflow, overflow)                          \
  X(kRescan, rescan)                              \
  X(kQueueFull, queue_full)                       \
  X(kStateRestored, state_restored)               \
  X(kStateIgnored, state_ignored)                 \
  X(kStateWriteFailed, state_write_failed)        \
  X(kStateWritten, state_written)                 \
  X(kScanSkipped, scan_skipped)                   \
  X(kScanFailed, scan_failed)                     \
  X(kLoopError, loop_error)                       \
  X(kStatusUnavailable, status_unavailable)       \
  X(kVerifierRestarted, verifier_restarted)       \
  X(kVerifierUsed, verifier_used)                 \
  X(kVerifierOwnersMixed, verifier_owners_mixed) \
  X(kSummary, summary)                            \
  X(kReload, reload)                              \
  X(kReloadFailed, reload_failed)                 \
  X(kLogReopened, log_reopened)                   \
  X(kLogReopenFailed, log_reopen_failed)          \
  X(kStop, stop)                                  \
  X(kStopped, stopped)

/// What a log line is about.
enum class LogEvent {
#define CKPTWATCH_LOG_EVENT_ENUMERATOR(enumerator, name) enumerator,
  CKPTWATCH_LOG_EVENTS(CKPTWATCH_LOG_EVENT_ENUMERATOR)
#undef CKPTWATCH_LOG_EVENT_ENUMERATOR
};

/// Every LogEvent, in order.
inline constexpr LogEvent kLogEvents[] = {
#define CKPTWATCH_LOG_EVENT_VALUE(enumerator, name) LogEvent::enumerator,
    CKPTWATCH_LOG_EVENTS(CKPTWATCH_LOG_EVENT_VALUE)
#undef CKPTWATCH_LOG_EVENT_VALUE
};

/// The `event=` value of `event`: "watch_started" for LogEvent::kWatchStarted.
constexpr std::string_view LogEventName(LogEvent event) {
  constexpr std::string_view kNames[] = {
#define CKPTWATCH_LOG_EVENT_NAME(enumerator, name) #name,
      CKPTWATCH_LOG_EVENTS(CKPTWATCH_LOG_EVENT_NAME)
#undef CKPTWATCH_LOG_EVENT_NAME
  };
  return kNames[static_cast<std::size_t>(event)];
}

}  // namespace ckptwatch
