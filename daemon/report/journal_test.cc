#include "report/journal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

namespace ckptwatch {
namespace {

std::string StreamOf(int fd) {
  struct stat st {};
  EXPECT_EQ(fstat(fd, &st), 0);
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

TEST(Journal, StreamMatchesOnlyTheDescriptorItNames) {
  int fds[2], other[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(pipe(other), 0);
  const std::string read_end = StreamOf(fds[0]);
  EXPECT_TRUE(IsJournalStream(read_end.c_str(), fds[0]));
  EXPECT_FALSE(IsJournalStream(read_end.c_str(), other[0]));  // another inode
  EXPECT_FALSE(IsJournalStream(nullptr, fds[0]));             // not under systemd
  for (const std::string& bad :
       {std::string(""), std::string(":"), read_end + "x", "x" + read_end,
        read_end.substr(0, read_end.find(':')), read_end.substr(read_end.find(':'))})
    EXPECT_FALSE(IsJournalStream(bad.c_str(), fds[0])) << bad;
  for (int fd : {fds[0], fds[1], other[0], other[1]}) close(fd);
  EXPECT_FALSE(IsJournalStream(read_end.c_str(), fds[0]));  // closed
}

TEST(Journal, LevelsMapToSyslogPriorities) {
  EXPECT_EQ(JournalPriority(LogLevel::kError), 3);
  EXPECT_EQ(JournalPriority(LogLevel::kWarn), 4);
  EXPECT_EQ(JournalPriority(LogLevel::kInfo), 6);
  EXPECT_EQ(JournalPriority(LogLevel::kDebug), 7);
  EXPECT_EQ(JournalPriority(LogLevel::kTrace), 7);
}

TEST(Journal, KeysBecomeUpperCaseFieldNamesJournaldAccepts) {
  EXPECT_EQ(JournalFieldName("watch"), "CKPTWATCH_WATCH");
  EXPECT_EQ(JournalFieldName("last_good_age_s"), "CKPTWATCH_LAST_GOOD_AGE_S");
  EXPECT_EQ(JournalFieldName("a-b.c9"), "CKPTWATCH_A_B_C9");
  EXPECT_EQ(JournalFieldName(std::string(80, 'k')).size(), 64u);
}

TEST(Journal, AnEntryCarriesMessagePriorityEventAndEveryKeyUnescaped) {
  LogRecord record;
  record.level = "error";
  record.event = "verify";
  record.fields = {{"watch", "run42"},
                   {"path", std::string("/ckpt/a b\n\xff.h5", 14)},
                   {"verdict", "truncated"}};
  record.message = "file ends early";
  EXPECT_EQ(
      JournalFields(record, LogLevel::kError, "level=error event=verify …"),
      (std::vector<std::string>{
          "MESSAGE=level=error event=verify …", "PRIORITY=3", "SYSLOG_IDENTIFIER=ckptwatch",
          "CKPTWATCH_EVENT=verify", "CKPTWATCH_WATCH=run42",
          std::string("CKPTWATCH_PATH=/ckpt/a b\n\xff.h5", 29), "CKPTWATCH_VERDICT=truncated"}));
}

}  // namespace
}  // namespace ckptwatch
