// `ckptwatch run`: the watch daemon. One libuv loop wires the watch backends
// (inotify, polling), the settle queues, the isolated verifier queue, the log
// and systemd. Signal handlers only wake the loop; the loop does the work.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"

namespace ckptwatch {

class EventLog;

/// Runs the daemon in the foreground until SIGTERM or SIGINT.
/// `config_path` is what SIGHUP reloads (empty: the embedded default, which
/// cannot be reloaded). Returns the process exit status.
int RunDaemon(const Config& config, const std::string& config_path, std::unique_ptr<EventLog> log);

}  // namespace ckptwatch
