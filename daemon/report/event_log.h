// The daemon's log: one line per event, logfmt or JSON, to stderr or a file
// that logrotate can move away (SIGUSR1 reopens it). When systemd connected
// stderr to the journal, each event is a structured journal entry instead.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "decide/log_event.h"
#include "report/logfmt.h"

namespace spdlog {
class logger;
}

namespace ckptwatch {

/// Where and how events are written. Thread-safe (spdlog does the locking).
class EventLog {
 public:
  /// Appends to `file` (created if missing), or writes to stderr when `file`
  /// is empty: as journal entries when JOURNAL_STREAM names stderr (journal.h),
  /// else as lines. Returns nullptr with `*err` set when the file cannot be opened.
  static std::unique_ptr<EventLog> Open(const std::string& file, LogFormat format, LogLevel level,
                                        std::string* err);
  /// What Open() needs of `file`, checked without creating anything: the file, or else the
  /// nearest existing directory above it (Open() creates the rest), is writable by this
  /// process. false with `*err` saying why.
  static bool CheckWritable(const std::string& file, std::string* err);
  ~EventLog();

  /// Writes one event when `level` is at or above the configured level.
  void Write(LogLevel level, LogEvent event, std::vector<LogField> fields,
             std::string message = "");
  bool Enabled(LogLevel level) const { return level >= level_; }
  /// Writes an error event, and `message` to stderr too when the log is a file: a start
  /// failure must reach the terminal and `systemctl status`, not only the file.
  void WriteErrorAlsoToStderr(LogEvent event, std::vector<LogField> fields,
                              const std::string& message);

  /// Reopens the log file by name (after logrotate moved it); no-op on stderr.
  bool Reopen(std::string* err);
  void set_level(LogLevel level) { level_ = level; }
  void set_format(LogFormat format) { format_ = format; }
  const std::string& file() const { return file_; }
  /// True when events go to a file, not to stderr (or the journal behind it).
  bool to_file() const { return !file_.empty(); }

 private:
  EventLog(std::string file, LogFormat format, LogLevel level);
  std::string file_;
  LogFormat format_;
  LogLevel level_;
  bool journal_ = false;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<void> reopen_sink_;  // the file sink, when logging to a file
};

}  // namespace ckptwatch
