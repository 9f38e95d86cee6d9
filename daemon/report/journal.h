// Events as structured journal entries, for a daemon whose stderr systemd connected to the
// journal: each with its priority (so `journalctl -p err` filters) and each key as a field
// (`journalctl CKPTWATCH_WATCH=run42`). Elsewhere the log stays plain text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "report/logfmt.h"

namespace ckptwatch {

/// True when `journal_stream` (the value of JOURNAL_STREAM, "DEVICE:INODE") names the device
/// and inode of `fd`: systemd connected that descriptor to the journal (systemd.exec(5)).
bool IsJournalStream(const char* journal_stream, int fd);

/// The syslog priority of a level: error 3 (err), warn 4 (warning), info 6, debug and trace 7.
int JournalPriority(LogLevel level);

/// The journal field name of a log key: CKPTWATCH_ and the key upper-cased, any character
/// outside A-Z, 0-9 and _ as _ ("watch" -> "CKPTWATCH_WATCH").
std::string JournalFieldName(std::string_view key);

/// One entry's fields, each "NAME=value": MESSAGE=`message`, PRIORITY, SYSLOG_IDENTIFIER=
/// ckptwatch, CKPTWATCH_EVENT, then CKPTWATCH_<KEY> per field with its value unescaped (file
/// names are bytes; the journal stores them as they are).
std::vector<std::string> JournalFields(const LogRecord& record, LogLevel level,
                                       std::string_view message);

/// Sends one entry to journald (sd_journal_sendv); false with `*err` when it was not taken.
bool SendToJournal(const std::vector<std::string>& fields, std::string* err);

}  // namespace ckptwatch
