// The daemon's log: one line per event, logfmt or JSON, to stderr or a file
// that logrotate can move away (SIGUSR1 reopens it).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "logfmt.h"

namespace spdlog {
class logger;
}

namespace ckptwatch {

/// Where and how events are written. Thread-safe (spdlog does the locking).
class EventLog {
 public:
  /// Appends to `file` (created if missing), or writes to stderr when `file`
  /// is empty. Returns nullptr with `*err` set when the file cannot be opened.
  static std::unique_ptr<EventLog> Open(const std::string& file, LogFormat format, LogLevel level,
                                        std::string* err);
  ~EventLog();

  /// Writes one event when `level` is at or above the configured level.
  void Write(LogLevel level, std::string_view event, std::vector<LogField> fields,
             std::string message = "");
  bool Enabled(LogLevel level) const { return level >= level_; }

  /// Reopens the log file by name (after logrotate moved it); no-op on stderr.
  bool Reopen(std::string* err);
  void set_level(LogLevel level) { level_ = level; }
  void set_format(LogFormat format) { format_ = format; }
  const std::string& file() const { return file_; }

 private:
  EventLog(std::string file, LogFormat format, LogLevel level);
  std::string file_;
  LogFormat format_;
  LogLevel level_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<void> reopen_sink_;  // the file sink, when logging to a file
};

}  // namespace ckptwatch
