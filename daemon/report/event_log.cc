#include "report/event_log.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "report/journal.h"

namespace ckptwatch {
namespace {

// spdlog's basic_file_sink cannot reopen its file; logrotate's
// "create" mode needs exactly that.
class ReopenableFileSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ReopenableFileSink(const std::string& path) { file_.open(path, false); }
  void Reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    file_.reopen(false);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    line.append(msg.payload.begin(), msg.payload.end());
    line.push_back('\n');
    file_.write(line);
  }
  // Each event is flushed: a person tailing the log during a run must see it now.
  void flush_() override { file_.flush(); }

 private:
  spdlog::details::file_helper file_;
};

spdlog::level::level_enum SpdlogLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

// Why no log file can be created or written at `path` whatever the permissions say, or nullptr.
const char* NoFilesHere(const std::filesystem::path& path) {
  struct statfs fs {};
  if (statfs(path.c_str(), &fs) != 0) return nullptr;  // access() said yes; open() will tell
  if (fs.f_flags & ST_RDONLY) return "on a read-only filesystem";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case PROC_SUPER_MAGIC:
    case SYSFS_MAGIC:
    case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC:
    case DEBUGFS_MAGIC:
    case TRACEFS_MAGIC:
    case SECURITYFS_MAGIC:
    case BPF_FS_MAGIC:
      return "on a kernel pseudo-filesystem (proc, sysfs, cgroup, …) where files cannot be created";
    default:
      return nullptr;
  }
}

}  // namespace

EventLog::EventLog(std::string file, LogFormat format, LogLevel level)
    : file_(std::move(file)), format_(format), level_(level) {}

EventLog::~EventLog() {
  if (logger_) logger_->flush();
}

std::unique_ptr<EventLog> EventLog::Open(const std::string& file, LogFormat format, LogLevel level,
                                         std::string* err) {
  std::unique_ptr<EventLog> log(new EventLog(file, format, level));
  spdlog::sink_ptr sink;
  try {
    if (file.empty()) {
      // Lines still go to stderr when the journal does not take an entry.
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
      log->journal_ = IsJournalStream(std::getenv("JOURNAL_STREAM"), 2);
    } else {
      auto file_sink = std::make_shared<ReopenableFileSink>(file);
      log->reopen_sink_ = file_sink;
      sink = file_sink;
    }
  } catch (const spdlog::spdlog_ex& e) {
    *err = "cannot open log file " + file + ": " + e.what();
    return nullptr;
  }
  log->logger_ = std::make_shared<spdlog::logger>("ckptwatch", sink);
  log->logger_->set_pattern("%v");  // lines are formatted by FormatLogfmt/FormatJson
  log->logger_->set_level(spdlog::level::trace);
  log->logger_->flush_on(spdlog::level::trace);
  return log;
}

void EventLog::Write(LogLevel level, LogEvent event, std::vector<LogField> fields,
                     std::string message) {
  if (!Enabled(level)) return;
  LogRecord record{std::chrono::system_clock::now(), LogLevelName(level), LogEventName(event),
                   std::move(fields), std::move(message)};
  const std::string line = format_ == LogFormat::kJson ? FormatJson(record) : FormatLogfmt(record);
  if (journal_) {
    // The journal stamps each entry itself: a text line goes without its timestamp.
    const std::string_view message = format_ == LogFormat::kJson
                                         ? std::string_view(line)
                                         : std::string_view(line).substr(line.find(' ') + 1);
    std::string err;
    if (SendToJournal(JournalFields(record, level, message), &err)) return;
  }
  logger_->log(SpdlogLevel(level), "{}", line);
}

void EventLog::WriteErrorAlsoToStderr(LogEvent event, std::vector<LogField> fields,
                                      const std::string& message) {
  Write(LogLevel::kError, event, std::move(fields), message);
  if (to_file()) std::fprintf(stderr, "ckptwatch: %s\n", message.c_str());
}

bool EventLog::CheckWritable(const std::string& file, std::string* err) {
  std::filesystem::path path(file);
  while (!path.empty() && access(path.c_str(), F_OK) != 0 && errno == ENOENT &&
         path != path.parent_path())
    path = path.parent_path();
  const bool is_file = path == std::filesystem::path(file);
  std::error_code ec;
  if (is_file && std::filesystem::is_directory(path, ec)) {
    *err = "cannot write " + file + ": " + std::strerror(EISDIR);
    return false;
  }
  // As open() would decide: with the effective ids.
  if (faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) != 0) {
    *err = "cannot write " + (is_file ? file : "in " + path.string()) + ": " + std::strerror(errno);
    return false;
  }
  // Root passes access() on a read-only mount and on /proc or /sys, where open() then fails.
  if (const char* why = NoFilesHere(path)) {
    *err = "cannot " + std::string(is_file ? "write " : "create ") + file + ": " + path.string() +
           " is " + why;
    return false;
  }
  return true;
}

bool EventLog::Reopen(std::string* err) {
  if (!reopen_sink_) return true;
  try {
    std::static_pointer_cast<ReopenableFileSink>(reopen_sink_)->Reopen();
    return true;
  } catch (const spdlog::spdlog_ex& e) {
    *err = e.what();
    return false;
  }
}

}  // namespace ckptwatch
