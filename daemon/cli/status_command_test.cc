#include "status_command.h"

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

#include "status_json.h"

namespace ckptwatch {
namespace {

StatusSnapshot Sample() {
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
  b.failing.push_back({b.path + "/epoch_12.h5", "", "truncated", "disk_full", 1'800'000'000 - 3600, 3});
  b.failing_total = 1;
  b.problems.push_back({"low_space", "1.0 GiB free, less than 1.5x the last good checkpoint (2.0 GiB)"});
  s.watches = {a, b};
  return s;
}

TEST(StatusCommand, FailingFilesComeFirstAndEveryLineFits80Columns) {
  const std::string text = FormatStatus(Sample(), 1'800'000'000);
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

TEST(StatusCommand, TheJsonDocumentReadsBackAsItWasWritten) {
  StatusSnapshot back;
  std::string err;
  ASSERT_TRUE(ParseStatusJson(StatusJson(Sample(), 4242, "0.1.0"), &back, &err)) << err;
  ASSERT_EQ(back.watches.size(), 2u);
  EXPECT_EQ(back.watches[1].failing[0].cause, "disk_full");
  EXPECT_EQ(back.watches[1].failing[0].count, 3u);
  EXPECT_EQ(back.watches[0].last_good->bytes, 209715200u);
  EXPECT_FALSE(back.AllWell());
  EXPECT_FALSE(ParseStatusJson("HTTP/1.1 200 OK\r\n", &back, &err));
  EXPECT_FALSE(ParseStatusJson("{\"version\": 9, \"watches\": []}", &back, &err));
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
  StatusSnapshot s = Sample();
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
             {"/srv/runs/runA/e.h5", "", "corrupt", "corrupt", 1.7e9, 1});
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
