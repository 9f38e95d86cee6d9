#include "status_command.h"

#include <gtest/gtest.h>

#include <sstream>

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

}  // namespace
}  // namespace ckptwatch
