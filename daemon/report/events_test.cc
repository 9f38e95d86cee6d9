// LogEvent (log_event.h) against docs/logging.md's event table and example lines. The code
// cannot log an event that is not a LogEvent: the type replaced a scan of the sources.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config_test_util.h"
#include "decide/log_event.h"
#include "report/logfmt.h"

namespace ckptwatch {
namespace {

using testing::ReadFile;
using testing::SourceDir;

// ---- the type ----------------------------------------------------------------------------

// Each name is generated from the enumerator's row (log_event.h): snake_case, unique.
TEST(Events, EveryEventHasOneSnakeCaseName) {
  std::set<std::string_view> names;
  for (LogEvent event : kLogEvents) {
    const std::string_view name = LogEventName(event);
    EXPECT_FALSE(name.empty());
    EXPECT_TRUE(std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || c == '_';
    })) << name;
    EXPECT_TRUE(names.insert(name).second) << name << " twice";
  }
  EXPECT_EQ(LogEventName(LogEvent::kWatchStarted), "watch_started");
  EXPECT_EQ(LogEventName(kLogEvents[0]), "start");
}

// ---- docs/logging.md -----------------------------------------------------------------------

struct DocRow {
  std::set<std::string> levels;
  std::set<std::string> keys;
};

std::string WithoutParentheses(const std::string& text) {
  std::string out;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (depth == 0) out += c;
    if (c == ')' && depth > 0) --depth;
  }
  return out;
}

std::vector<std::string> Backticked(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t open = text.find('`'); open != std::string::npos;) {
    const std::size_t close = text.find('`', open + 1);
    if (close == std::string::npos) break;
    out.push_back(text.substr(open + 1, close - open - 1));
    open = text.find('`', close + 1);
  }
  return out;
}

// The rows of the "## Events" table, in order: event -> levels and keys.
std::vector<std::pair<std::string, DocRow>> EventTable(const std::string& doc) {
  std::vector<std::pair<std::string, DocRow>> rows;
  const std::size_t section = doc.find("\n## Events\n");
  if (section == std::string::npos) return rows;
  std::istringstream in(doc.substr(section, doc.find("\n## ", section + 1) - section));
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("| `")) continue;
    std::vector<std::string> cells;
    for (std::size_t from = 1, bar; (bar = line.find(" |", from)) != std::string::npos;
         from = bar + 2)
      cells.push_back(line.substr(from, bar - from));
    if (cells.size() < 3) continue;
    DocRow row;
    for (const char* level : {"debug", "info", "warn", "error"})
      if (WithoutParentheses(cells[1]).find(level) != std::string::npos) row.levels.insert(level);
    for (const std::string& key : Backticked(WithoutParentheses(cells[2]))) row.keys.insert(key);
    rows.push_back({Backticked(cells[0]).at(0), row});
  }
  return rows;
}

// A logfmt value as FormatLogfmt() writes it (bare, or quoted with \" \\ \n \r \t escapes).
std::string ParseValue(const std::string& line, std::size_t* i) {
  std::string value;
  if (line[*i] != '"') {
    const std::size_t end = std::min(line.find(' ', *i), line.size());
    value = line.substr(*i, end - *i);
    *i = end;
    return value;
  }
  for (++*i; *i < line.size() && line[*i] != '"'; ++*i) {
    if (line[*i] != '\\') {
      value += line[*i];
      continue;
    }
    const char c = line[++*i];
    value += c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
  }
  ++*i;
  return value;
}

TEST(Events, LoggingDocHasARowAndAnExampleLineForEveryEvent) {
  if (SourceDir().empty()) GTEST_SKIP() << "CKPTWATCH_SOURCE_DIR is not set";
  const std::string doc = ReadFile(SourceDir() + "/docs/logging.md");
  const auto table = EventTable(doc);
  std::vector<std::string> documented;
  for (const auto& [event, row] : table) documented.push_back(event);
  std::vector<std::string> typed;
  for (LogEvent event : kLogEvents) typed.emplace_back(LogEventName(event));
  EXPECT_EQ(documented, typed) << "docs/logging.md's event table and LogEvent (log_event.h) differ";
  const std::map<std::string, DocRow> rows(table.begin(), table.end());

  const std::string begin = "<!-- BEGIN EXAMPLES -->\n```\n", end = "```\n<!-- END EXAMPLES -->";
  const std::size_t from = doc.find(begin), to = doc.find(end);
  ASSERT_NE(from, std::string::npos) << "docs/logging.md has no " << begin;
  ASSERT_NE(to, std::string::npos) << "docs/logging.md has no " << end;
  std::vector<std::string> examples;
  std::istringstream in(doc.substr(from + begin.size(), to - from - begin.size()));
  for (std::string line; std::getline(in, line);) {
    SCOPED_TRACE(line);
    // `TS level=L event=E k=v … msg=…`: parsed, then formatted again by FormatLogfmt.
    std::size_t i = line.find(' ') + 1;
    LogRecord record;
    std::string level, event;
    while (i > 0 && i < line.size()) {
      const std::size_t eq = line.find('=', i);
      ASSERT_NE(eq, std::string::npos);
      const std::string key = line.substr(i, eq - i);
      i = eq + 1;
      std::string value = ParseValue(line, &i);
      if (i < line.size()) ++i;  // the space before the next key
      if (key == "level")
        level = value;
      else if (key == "event")
        event = value;
      else if (key == "msg")
        record.message = value;
      else
        record.fields.push_back({key, value});
    }
    record.level = level;
    record.event = event;
    const std::string formatted = FormatLogfmt(record);
    EXPECT_EQ(formatted.substr(formatted.find(' ')), line.substr(line.find(' ')))
        << "not what FormatLogfmt() writes for these keys and values";
    ASSERT_TRUE(rows.count(event)) << "an example of an event not in the table";
    EXPECT_TRUE(rows.at(event).levels.count(level)) << "level " << level << " is not documented";
    for (const auto& [key, value] : record.fields)
      EXPECT_TRUE(rows.at(event).keys.count(key)) << "key " << key << " is not in its row";
    examples.push_back(event);
  }
  EXPECT_EQ(examples, documented) << "one example line per event, in the table's order";
}

}  // namespace
}  // namespace ckptwatch
