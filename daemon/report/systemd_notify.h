// Telling systemd (Type=notify) what the daemon is doing. Every call is a
// no-op when NOTIFY_SOCKET is unset (run by hand, or in tests without one).
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace ckptwatch {

/// READY=1 plus STATUS=`status`: watches are set up.
void NotifyReady(const std::string& status);
/// RELOADING=1 (with MONOTONIC_USEC, as systemd 253+ asks): a reload began.
void NotifyReloading();
/// STOPPING=1: shutdown began.
void NotifyStopping();
/// STATUS=`status` alone.
void NotifyStatus(const std::string& status);
/// WATCHDOG=1: the loop is alive.
void NotifyWatchdog();
/// The watchdog interval systemd asked for (WatchdogSec=), if any.
std::optional<std::chrono::microseconds> WatchdogInterval();

}  // namespace ckptwatch
