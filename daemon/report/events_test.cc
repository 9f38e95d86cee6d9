// kEvents against the two places it must agree with: the Log() calls in the daemon's sources and
// docs/logging.md's event table and example lines.
#include "report/events.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config_test_util.h"
#include "report/logfmt.h"

namespace ckptwatch {
namespace {

using testing::ReadFile;
using testing::SourceDir;

// ---- the sources ---------------------------------------------------------------------------

// The top-level arguments of the call whose '(' is at `open`, up to `max` of them.
std::vector<std::string> CallArguments(const std::string& text, std::size_t open, std::size_t max) {
  std::vector<std::string> args(1);
  int depth = 0;
  for (std::size_t i = open + 1; i < text.size() && args.size() <= max; ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'') {  // a literal: copied whole, commas and brackets inside ignored
      const std::size_t start = i;
      for (++i; i < text.size() && text[i] != c; ++i)
        if (text[i] == '\\') ++i;
      args.back() += text.substr(start, i - start + 1);
      continue;
    }
    if (c == '(' || c == '{' || c == '[') ++depth;
    if (c == ')' || c == '}' || c == ']') {
      if (depth-- == 0) break;
    }
    if (c == ',' && depth == 0) {
      args.emplace_back();
      continue;
    }
    args.back() += c;
  }
  for (std::string& arg : args) {
    arg.erase(0, arg.find_first_not_of(" \n\t"));
    arg.erase(arg.find_last_not_of(" \n\t") + 1);
  }
  return args;
}

struct LogCalls {
  std::map<std::string, std::string> events;  // event name -> where it is logged first
  std::vector<std::string> unknown;           // calls whose event the scan cannot read
};

// Every Log(level, "event", …), Write(level, "event", …) and WriteErrorAlsoToStderr("event", …)
// call in the daemon's sources. A
// call that passes its event in a variable is reported as unknown unless it is a forwarder
// (the variable is named `event`, as in Reporter::Log and EventLog::Write).
LogCalls ScanLogCalls(const std::filesystem::path& daemon_dir) {
  LogCalls calls;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(daemon_dir)) {
    const std::string path = entry.path().string();
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.ends_with("_test.cc") ||
        !(name.ends_with(".cc") || name.ends_with(".h")))
      continue;
    const std::string text = ReadFile(path);
    // The functions that log, and which argument is the event: Log(level, event, …),
    // Write(level, event, …), WriteErrorAlsoToStderr(event, …).
    for (const auto& [callee, index] : {std::pair<std::string_view, std::size_t>{"Log(", 1},
                                        {"Write(", 1},
                                        {"WriteErrorAlsoToStderr(", 0}}) {
      for (std::size_t at = text.find(callee); at != std::string::npos;
           at = text.find(callee, at + 1)) {
        if (at > 0 &&
            (std::isalnum(static_cast<unsigned char>(text[at - 1])) || text[at - 1] == '_'))
          continue;
        const std::vector<std::string> args = CallArguments(text, at + callee.size() - 1, 2);
        // Log calls take a level first; Write(path, size) and friends are something else.
        if (args.size() <= index || (index == 1 && args[0].find("evel") == std::string::npos))
          continue;
        const std::string& event = args[index];
        const std::string where =
            std::filesystem::relative(path, daemon_dir.parent_path()).string() + ":" +
            std::to_string(std::count(text.begin(), text.begin() + at, '\n') + 1);
        if (event.size() >= 2 && event.front() == '"' && event.back() == '"') {
          calls.events.emplace(event.substr(1, event.size() - 2), where);
        } else if (event != "event" && !event.ends_with(" event")) {
          calls.unknown.push_back(where + ": " + event);
        }
      }
    }
  }
  return calls;
}

TEST(Events, TheCodeLogsExactlyTheListedEvents) {
  if (SourceDir().empty()) GTEST_SKIP() << "CKPTWATCH_SOURCE_DIR is not set";
  const LogCalls calls = ScanLogCalls(std::filesystem::path(SourceDir()) / "daemon");
  ASSERT_GE(calls.events.size(), 20u) << "the scan no longer finds the Log() calls";
  EXPECT_EQ(calls.unknown, std::vector<std::string>{})
      << "Log() calls whose event is not a string literal: write the event name in the call";
  for (const auto& [event, where] : calls.events) {
    EXPECT_NE(std::find(std::begin(kEvents), std::end(kEvents), event), std::end(kEvents))
        << where << " logs event=" << event
        << ", which is not in kEvents (daemon/report/events.h) nor documented in docs/logging.md";
  }
  for (std::string_view event : kEvents) {
    EXPECT_TRUE(calls.events.count(std::string(event)))
        << "kEvents lists " << event << ", which no Log() call in daemon/ writes";
  }
}

TEST(Events, TheScanReadsMultiLineCallsAndFlagsEventsInVariables) {
  const auto dir = std::filesystem::temp_directory_path() / "ckptwatch-events-scan";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "daemon" / "x");
  std::ofstream(dir / "daemon" / "x" / "a.cc")
      << "void F() {\n  Log(ok ? LogLevel::kInfo : LogLevel::kError,\n      \"made_up\", {{\"k\", "
         "f(a, b)}});\n  log_->Write(level, name, {});\n  Write(path, size);\n"
         "  log_->WriteErrorAlsoToStderr(\"failed_too\", {});\n}\n"
         "void Log(LogLevel level, std::string_view event) { w.Log(level, event); }\n";
  const LogCalls calls = ScanLogCalls(dir / "daemon");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(calls.events, (std::map<std::string, std::string>{{"made_up", "daemon/x/a.cc:2"},
                                                              {"failed_too", "daemon/x/a.cc:6"}}));
  EXPECT_EQ(calls.unknown, std::vector<std::string>{"daemon/x/a.cc:4: name"});
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
  EXPECT_EQ(documented, std::vector<std::string>(std::begin(kEvents), std::end(kEvents)))
      << "docs/logging.md's event table and kEvents (daemon/report/events.h) differ";
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
