#include "report/journal.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace ckptwatch {

bool IsJournalStream(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return false;
  const std::string_view value(journal_stream);
  const std::size_t colon = value.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long device = 0, inode = 0;
  const char* end = value.data() + value.size();
  const auto [dev_end, dev_ec] = std::from_chars(value.data(), value.data() + colon, device);
  const auto [ino_end, ino_ec] = std::from_chars(value.data() + colon + 1, end, inode);
  if (dev_ec != std::errc() || dev_end != value.data() + colon || ino_ec != std::errc() ||
      ino_end != end)
    return false;
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == device &&
         static_cast<unsigned long long>(st.st_ino) == inode;
}

int JournalPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return 3;
    case LogLevel::kWarn:
      return 4;
    case LogLevel::kInfo:
      return 6;
    case LogLevel::kDebug:
    case LogLevel::kTrace:
      return 7;
  }
  return 6;
}

std::string JournalFieldName(std::string_view key) {
  std::string name = "CKPTWATCH_";
  for (char c : key) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    name += (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ? c : '_';
  }
  // journald drops fields whose names are longer than 64 characters.
  if (name.size() > 64) name.resize(64);
  return name;
}

std::vector<std::string> JournalFields(const LogRecord& record, LogLevel level,
                                       std::string_view message) {
  std::vector<std::string> fields;
  fields.reserve(record.fields.size() + 4);
  fields.push_back("MESSAGE=" + std::string(message));
  fields.push_back("PRIORITY=" + std::to_string(JournalPriority(level)));
  fields.push_back("SYSLOG_IDENTIFIER=ckptwatch");
  fields.push_back("CKPTWATCH_EVENT=" + std::string(record.event));
  for (const auto& [key, value] : record.fields)
    fields.push_back(JournalFieldName(key) + "=" + value);
  return fields;
}

bool SendToJournal(const std::vector<std::string>& fields, std::string* err) {
  std::vector<iovec> iov;
  iov.reserve(fields.size());
  for (const std::string& field : fields)
    iov.push_back({const_cast<char*>(field.data()), field.size()});
  const int rc = sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  if (rc < 0) {
    *err = std::string("sd_journal_sendv: ") + std::strerror(-rc);
    return false;
  }
  return true;
}

}  // namespace ckptwatch
