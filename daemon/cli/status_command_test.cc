#include "cli/status_command.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/text_escape.h"
#include "report/status_json.h"

namespace ckptwatch {
namespace {

StatusSnapshot SampleSnapshot() {
  StatusSnapshot s;
  s.unix_now = 1'800'000'000;
  s.queued = 2;
  WatchStatus a;
  a.name = "runA";
  a.path = "/srv/runs/runA";
  a.state = "watching";
  a.backend = "inotify";
  a.last_good = WatchStatus::LastGood{"/srv/runs/runA/epoch_41.h5", 1'800'000'000 - 312, 209715200};
  WatchStatus b = a;
  b.name = "runB";
  b.path = "/srv/runs/runB/with/a/very/long/path/that/does/not/fit/into/eighty/columns/at/all/ckpt";
  b.last_good.reset();
  b.failing.push_back(
      {b.path + "/epoch_12.h5", "", "truncated", "disk_full",
       "file ends at 16384 bytes but its HDF5 superblock says 65536: truncated; the "
       "filesystem had 0 B free when it was written: the disk filled during the save",
       1'800'000'000 - 3600, 3});
  b.failing_total = 1;
  b.problems.push_back({"low_space", "1.0 GiB free, less than 1.5x the last good checkpoint (2.0 GiB)"});
  s.watches = {a, b};
  return s;
}

TEST(StatusCommand, FailingFilesComeFirstAndEveryLineFits80Columns) {
  const std::string text = FormatStatus(SampleSnapshot(), 1'800'000'000);
  const std::size_t failing = text.find("FAILING");
  const std::size_t watches = text.find("WATCHES");
  ASSERT_NE(failing, std::string::npos);
  EXPECT_LT(failing, watches);
  EXPECT_NE(text.find("epoch_12.h5"), std::string::npos);
  EXPECT_NE(text.find("runB: truncated, cause disk_full"), std::string::npos) << text;
  EXPECT_NE(text.find("×3"), std::string::npos);
  EXPECT_NE(text.find("last good: epoch_41.h5, 200.0 MiB, 5m12s ago"), std::string::npos) << text;
  EXPECT_NE(text.find("problem low_space"), std::string::npos);
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::size_t columns = 0;  // code points, not bytes
    for (unsigned char c : line) columns += (c & 0xC0) != 0x80;
    EXPECT_LE(columns, 80u) << line;
  }
}

TEST(StatusCommand, EachFailingFileSaysWhyWithTheMiddleCutNeverItsStartOrEnd) {
  const std::string text = FormatStatus(SampleSnapshot(), 1'800'000'000);
  // Who and where (the start) and what to do about it (the end) both survive the cut.
  EXPECT_NE(text.find("    why: file ends at 16384 bytes"), std::string::npos) << text;
  EXPECT_NE(text.find("…"), std::string::npos) << text;
  EXPECT_NE(text.find("the disk filled during the save\n"), std::string::npos) << text;
}

TEST(StatusCommand, AProblemReasonKeepsItsSubjectAndItsEnd) {
  StatusSnapshot s = SampleSnapshot();
  s.watches[1].problems = {{"not_writable",
                            "user alice (uid 1001) cannot create files in /srv/runs/runB/with/a/"
                            "very/long/path: no write permission on the directory: its saves will "
                            "fail with PermissionError [Errno 13]"}};
  const std::string text = FormatStatus(s, 1'800'000'000);
  EXPECT_NE(text.find("problem not_writable: user alice (uid 1001)"), std::string::npos) << text;
  EXPECT_NE(text.find("PermissionError [Errno 13]\n"), std::string::npos) << text;
}

TEST(StatusCommand, LoadProblemsHaveTheirOwnSectionAndDoNotFailTheStatus) {
  StatusSnapshot s = SampleSnapshot();
  s.watches[1].failing.clear();
  s.watches[1].failing_total = 0;
  s.watches[1].problems.clear();
  s.watches[0].load_problems.push_back(
      {"/srv/runs/runA/custom.h5", "", "needs_custom_objects", "MyCustomLayer", "keras=2.15", "",
       "load with custom_objects for MyCustomLayer (or register the classes)", 1'800'000'000 - 10});
  s.watches[0].load_problems_total = 1;
  EXPECT_TRUE(s.AllWell());
  const std::string text = FormatStatus(s, 1'800'000'000);
  const std::size_t section = text.find("LOAD PROBLEMS");
  ASSERT_NE(section, std::string::npos) << text;
  EXPECT_LT(section, text.find("WATCHES"));
  EXPECT_NE(text.find("  /srv/runs/runA/custom.h5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("runA: needs_custom_objects, class MyCustomLayer, target keras=2.15"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("    do: load with custom_objects for MyCustomLayer (or register the classes)\n"),
      std::string::npos)
      << text;

  StatusSnapshot back;
  std::string err;
  ASSERT_TRUE(ParseStatusJson(StatusJson(s, 1, "0"), &back, &err)) << err;
  ASSERT_EQ(back.watches[0].load_problems.size(), 1u);
  EXPECT_EQ(back.watches[0].load_problems[0].classes, "MyCustomLayer");
  EXPECT_EQ(back.watches[0].load_problems[0].target, "keras=2.15");
  EXPECT_EQ(back.watches[0].load_problems_total, 1u);
}

TEST(StatusCommand, TheJsonDocumentReadsBackAsItWasWritten) {
  StatusSnapshot back;
  std::string err;
  ASSERT_TRUE(ParseStatusJson(StatusJson(SampleSnapshot(), 4242, "0.1.0"), &back, &err)) << err;
  ASSERT_EQ(back.watches.size(), 2u);
  EXPECT_EQ(back.watches[1].failing[0].cause, "disk_full");
  EXPECT_EQ(back.watches[1].failing[0].count, 3u);
  EXPECT_EQ(back.watches[1].failing[0].reason, SampleSnapshot().watches[1].failing[0].reason);
  EXPECT_EQ(back.watches[0].last_good->bytes, 209715200u);
  EXPECT_FALSE(back.AllWell());
  EXPECT_FALSE(ParseStatusJson("HTTP/1.1 200 OK\r\n", &back, &err));
  EXPECT_FALSE(ParseStatusJson("{\"version\": 9, \"watches\": []}", &back, &err));
}

TEST(StatusCommand, EachRunsNewestCompleteSetIsWhereToResumeFrom) {
  StatusSnapshot s = SampleSnapshot();
  s.watches[0].complete_sets.push_back(
      {"r7", "/srv/runs/runA/r7/checkpoint-400", "hf_trainer", 400, 1'800'000'000 - 360});
  const std::string text = FormatStatus(s, 1'800'000'000);
  EXPECT_NE(text.find("    run r7: resume from r7/checkpoint-400 (hf_trainer, step 400), complete 6m"),
            std::string::npos)
      << text;
  StatusSnapshot back;
  std::string err;
  ASSERT_TRUE(ParseStatusJson(StatusJson(s, 1, "0"), &back, &err)) << err;
  ASSERT_EQ(back.watches[0].complete_sets.size(), 1u);
  EXPECT_EQ(back.watches[0].complete_sets[0].path, "/srv/runs/runA/r7/checkpoint-400");
  EXPECT_EQ(back.watches[0].complete_sets[0].step, 400);
  EXPECT_EQ(back.watches[0].complete_sets[0].layout, "hf_trainer");
  EXPECT_TRUE(back.watches[1].complete_sets.empty());
}

// The first raw byte of `text` that a terminal would act on or that is not UTF-8, besides the
// line ends the output is made of; npos when there is none.
std::size_t FirstRawUnsafe(const std::string& text) {
  char32_t cp;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = DecodeUtf8(text, i, &cp);
    if (len == 0 || (cp != '\n' && IsUnsafeCodePoint(cp))) return i;
    i += len;
  }
  return std::string::npos;
}

// Names a user who can write a watched directory may choose: ESC/CSI colour and cursor moves,
// an OSC title change, C1 CSI, bidi overrides and isolates, a line break that forges a log-like
// line, a carriage return that hides what came before, and bytes that are not UTF-8.
const char* const kHostileNames[] = {
    "\x1b[31mred\x1b[0m.h5",
    "\x1b]0;owned\x07.h5",
    "\xc2\x9b"
    "2J.h5",
    "evil\xe2\x80\xaeh5.txt",
    "iso\xe2\x81\xa6late\xe2\x81\xa9.h5",
    "a.h5\nlevel=error event=verify path=forged verdict=ok",
    "hidden\rok.h5",
    "bad\xff\xfe.h5",
    "del\x7f\x01.h5",
};

TEST(StatusCommand, HostileNamesArePrintedEscapedNeverRaw) {
  StatusSnapshot s = SampleSnapshot();
  WatchStatus& w = s.watches[1];
  w.failing.clear();
  for (const char* name : kHostileNames)
    w.failing.push_back(
        {w.path + "/" + name, name, "truncated", "truncated", name, 1'800'000'000 - 60, 1});
  w.failing_total = w.failing.size();
  w.name = kHostileNames[0];
  w.runs.push_back(
      {kHostileNames[5], {std::string("/r/") + kHostileNames[1], 1'800'000'000 - 5, 1}});
  w.problems.push_back({kHostileNames[3], kHostileNames[5]});
  s.watches[0].last_good->path = std::string("/srv/runs/runA/") + kHostileNames[2];
  // Through the socket's document and back, as `ckptwatch status` sees it.
  StatusSnapshot back;
  std::string err;
  ASSERT_TRUE(ParseStatusJson(StatusJson(s, 1, "0"), &back, &err)) << err;
  ASSERT_EQ(back.watches[1].failing.size(), std::size(kHostileNames));
  for (std::size_t i = 0; i < std::size(kHostileNames); ++i)
    EXPECT_EQ(back.watches[1].failing[i].run, kHostileNames[i]) << "the bytes survive the JSON";
  const std::string text = FormatStatus(back, 1'800'000'000);
  const std::size_t raw = FirstRawUnsafe(text);
  EXPECT_EQ(raw, std::string::npos) << "raw byte at " << raw << " in:\n" << text;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) EXPECT_NE(line.rfind("level=", 0), 0u) << line;
  EXPECT_NE(text.find("\\u001b[31mred"), std::string::npos) << text;
  EXPECT_NE(text.find("evil\\u202eh5.txt"), std::string::npos) << text;
  EXPECT_NE(text.find("bad\\xff\\xfe.h5"), std::string::npos) << text;
  EXPECT_NE(text.find("a.h5\\nlevel=error"), std::string::npos) << text;
}

TEST(StatusCommand, TheJsonDocumentHasNoRawControlBidiOrInvalidByte) {
  StatusSnapshot s = SampleSnapshot();
  for (const char* name : kHostileNames)
    s.watches[1].failing.push_back(
        {std::string("/d/") + name, "", "corrupt", "corrupt", name, 1, 1});
  const std::string doc = StatusJson(s, 1, "0");
  EXPECT_EQ(FirstRawUnsafe(doc), std::string::npos);
  EXPECT_EQ(doc.find('\n'), doc.size() - 1);
}

TEST(StatusCommand, ACutNameNeverSplitsACharacterOrAnEscapeIntoRawBytes) {
  StatusSnapshot s = SampleSnapshot();
  // 100 snowmen and an ESC at the end: the path is cut from the left to fit 76 bytes.
  std::string name;
  for (int i = 0; i < 100; ++i) name += "\xe2\x98\x83";
  s.watches[0].path = "/" + name + "\x1b";
  const std::string text = FormatStatus(s, 1'800'000'000);
  EXPECT_EQ(FirstRawUnsafe(text), std::string::npos) << text;
  EXPECT_NE(text.find("\\u001b"), std::string::npos);
}

// A daemon's status socket that gives one `answer` to one client, then hangs up.
class OneAnswerSocket {
 public:
  explicit OneAnswerSocket(std::string answer) : answer_(std::move(answer)) {
    char tmpl[] = "/tmp/ckptwatch-status-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/status.sock";
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    // Listening before the client runs: its connect() cannot race the server.
    listening_ =
        bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && listen(fd_, 1) == 0;
    if (listening_) server_ = std::thread([this] { Serve(); });
  }
  ~OneAnswerSocket() {
    shutdown(fd_, SHUT_RDWR);  // wakes an accept() no client came to: a failure, not a hang
    if (server_.joinable()) server_.join();
    close(fd_);
    std::filesystem::remove_all(dir_);
  }
  bool listening() const { return listening_; }
  const std::string& path() const { return path_; }

 private:
  void Serve() {
    int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) return;
    for (std::size_t done = 0; done < answer_.size();) {
      ssize_t n = send(client, answer_.data() + done, answer_.size() - done, MSG_NOSIGNAL);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    close(client);
  }
  std::string answer_, dir_, path_;
  int fd_ = -1;
  bool listening_ = false;
  std::thread server_;
};

struct StatusRun {
  int code;
  std::string out, err;
};

StatusRun RunStatus(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = RunStatusCommand(args, out, err);
  return {code, out.str(), err.str()};
}

StatusSnapshot WellSnapshot() {
  StatusSnapshot s = SampleSnapshot();
  s.watches.pop_back();
  return s;
}

// The exit status is what scripts and monitoring act on: 0 all well, 1 something failing,
// 2 no answer from a daemon. Each reason for 1 on its own, against a real socket.
TEST(StatusCommand, ExitsZeroOnlyWhenEveryWatchIsWell) {
  struct Case {
    const char* what;
    void (*spoil)(StatusSnapshot*);
    int code;
  };
  const Case cases[] = {
      {"all well", [](StatusSnapshot*) {}, 0},
      {"no watches", [](StatusSnapshot* s) { s->watches.clear(); }, 0},
      {"a failing file",
       [](StatusSnapshot* s) {
         s->watches[0].failing.push_back(
             {"/srv/runs/runA/e.h5", "", "corrupt", "corrupt", "bad superblock", 1.7e9, 1});
         s->watches[0].failing_total = 1;
       },
       1},
      {"failing files beyond those listed",
       [](StatusSnapshot* s) { s->watches[0].failing_total = 1; }, 1},
      {"a problem",
       [](StatusSnapshot* s) {
         s->watches[0].problems.push_back({"low_space", "1 GiB free"});
       },
       1},
      {"a missing watch", [](StatusSnapshot* s) { s->watches[0].state = "missing"; }, 1},
      {"a degraded watch", [](StatusSnapshot* s) { s->watches[0].state = "degraded"; }, 1},
      {"the second watch failing",
       [](StatusSnapshot* s) {
         s->watches.push_back(s->watches[0]);
         s->watches[1].name = "runC";
         s->watches[1].state = "missing";
       },
       1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    StatusSnapshot status = WellSnapshot();
    c.spoil(&status);
    for (bool json : {false, true}) {
      const std::string answer = StatusJson(status, 4242, "0.1.0");
      OneAnswerSocket daemon(answer);
      ASSERT_TRUE(daemon.listening());
      std::vector<std::string> args = {"--socket", daemon.path()};
      if (json) args.push_back("--json");
      StatusRun run = RunStatus(args);
      EXPECT_EQ(run.code, c.code) << run.err;
      EXPECT_EQ(run.err, "");
      if (json)
        EXPECT_EQ(run.out, answer);
      else
        EXPECT_EQ(run.out, FormatStatus(status, status.unix_now));
    }
  }
}

TEST(StatusCommand, ExitsTwoWhenNoDaemonAnswers) {
  char tmpl[] = "/tmp/ckptwatch-status-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  StatusRun none = RunStatus({"--socket", dir + "/none.sock"});
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("cannot reach the daemon at " + dir + "/none.sock"), std::string::npos)
      << none.err;
  EXPECT_NE(none.err.find("is ckptwatch running?"), std::string::npos) << none.err;
  EXPECT_EQ(none.out, "");
  std::filesystem::remove_all(dir);

  const std::string too_large((16 << 20) + 1, ' ');
  for (const std::string& answer :
       {std::string(), std::string("HTTP/1.1 200 OK\r\n\r\n"), too_large,
        StatusJson(WellSnapshot(), 1, "0.1.0").substr(0, 40)}) {
    SCOPED_TRACE(answer.substr(0, 40));
    OneAnswerSocket daemon(answer);
    ASSERT_TRUE(daemon.listening());
    StatusRun run = RunStatus({"--socket", daemon.path()});
    EXPECT_EQ(run.code, 2);
    EXPECT_EQ(run.err.rfind("ckptwatch status: ", 0), 0u) << run.err;
    EXPECT_EQ(run.out, "");
  }
}

TEST(StatusCommand, ExitsTwoOnABadArgumentAndZeroForHelp) {
  StatusRun bad = RunStatus({"--jsn"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("unexpected argument '--jsn'"), std::string::npos) << bad.err;
  EXPECT_EQ(RunStatus({"--socket"}).code, 2) << "--socket needs its value";
  StatusRun help = RunStatus({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("Exit status: 0 all well"), std::string::npos);
}

}  // namespace
}  // namespace ckptwatch
