#include "report/logfmt.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ckptwatch {
namespace {

LogRecord SampleRecord() {
  LogRecord r;
  r.time = std::chrono::system_clock::time_point(std::chrono::microseconds(1795462201123456));
  r.level = "error";
  r.event = "verify";
  r.fields = {
      {"watch", "run42"}, {"path", "/data/ckpt/run 42/epoch_042.h5"}, {"verdict", "truncated"}};
  r.message = "file ends at 100 MiB";
  return r;
}

TEST(Logfmt, LeavesPlainValuesBare) { EXPECT_EQ(LogfmtValue("run42"), "run42"); }

TEST(Logfmt, QuotesAndEscapesValuesThatWouldBreakTheLine) {
  EXPECT_EQ(LogfmtValue(""), "\"\"");
  EXPECT_EQ(LogfmtValue("a b"), "\"a b\"");
  EXPECT_EQ(LogfmtValue("k=v"), "\"k=v\"");
  EXPECT_EQ(LogfmtValue("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
  EXPECT_EQ(LogfmtValue("two\nlines"), "\"two\\nlines\"");
  EXPECT_EQ(LogfmtValue(std::string("bell\x07", 5)), "\"bell\\u0007\"");
}

TEST(Logfmt, FormatsOneGreppableLine) {
  EXPECT_EQ(
      FormatLogfmt(SampleRecord()),
      "2026-11-23T19:30:01.123456Z level=error event=verify watch=run42 "
      "path=\"/data/ckpt/run 42/epoch_042.h5\" verdict=truncated msg=\"file ends at 100 MiB\"");
}

TEST(Logfmt, JsonHasTheSameKeys) {
  auto json = nlohmann::json::parse(FormatJson(SampleRecord()));
  EXPECT_EQ(json["ts"], "2026-11-23T19:30:01.123456Z");
  EXPECT_EQ(json["level"], "error");
  EXPECT_EQ(json["event"], "verify");
  EXPECT_EQ(json["path"], "/data/ckpt/run 42/epoch_042.h5");
  EXPECT_EQ(json["msg"], "file ends at 100 MiB");
}

TEST(Logfmt, JsonWritesNumberAndBooleanKeysTyped) {
  LogRecord r = SampleRecord();
  r.fields = {{"bytes", "20432"}, {"elapsed_ms", "3.1"}, {"recursive", "true"}, {"path", "123"}};
  const std::string line = FormatJson(r);
  EXPECT_NE(line.find(R"("bytes":20432,"elapsed_ms":3.1,"recursive":true,"path":"123")"),
            std::string::npos)
      << line;
}

TEST(Logfmt, JsonKeepsANumberKeyThatIsNoPlainNumberAString) {
  for (const char* odd :
       {"", "1e9", "01", "inf", "nan", "1.", ".5", "-", "12 ", "99999999999999999999"}) {
    LogRecord r = SampleRecord();
    r.fields = {{"bytes", odd}, {"recursive", "yes"}};
    auto json = nlohmann::json::parse(FormatJson(r));
    EXPECT_EQ(json["bytes"], odd);
    EXPECT_EQ(json["recursive"], "yes");
  }
}

TEST(Logfmt, JsonSurvivesInvalidUtf8InFileNames) {
  LogRecord r = SampleRecord();
  r.fields = {{"path", std::string("bad\xff\xfe.h5")}, {"other", R"(bad\xff.h5)"}};
  nlohmann::json json;
  ASSERT_NO_THROW(json = nlohmann::json::parse(FormatJson(r)));
  EXPECT_EQ(json["path"], R"(bad\xff\xfe.h5)");
  EXPECT_EQ(json["other"], R"(bad\x5cxff.h5)");
}

TEST(Logfmt, JsonLineEscapesBidiAndSeparators) {
  LogRecord r = SampleRecord();
  r.fields = {{"path", "evil_\u202egpj.h5\u2028\u0085"}};
  const std::string line = FormatJson(r);
  EXPECT_NE(line.find(R"("path":"evil_\u202egpj.h5\u2028\u0085")"), std::string::npos) << line;
  EXPECT_EQ(nlohmann::json::parse(line)["path"], "evil_\u202egpj.h5\u2028\u0085");
  r.fields = {{"path", "del\x7f"}};
  EXPECT_NE(FormatJson(r).find(R"("path":"del\u007f")"), std::string::npos) << FormatJson(r);
}

TEST(Logfmt, EscapesInvalidUtf8AndBidiSoLinesCannotBeForgedOrReordered) {
  EXPECT_EQ(LogfmtValue("ckpt_\xff\xfe.h5"), R"("ckpt_\xff\xfe.h5")");
  EXPECT_EQ(LogfmtValue(R"(ckpt_\xff.h5)"), R"("ckpt_\\xff.h5")");
  EXPECT_EQ(LogfmtValue("evil_\u202egpj.h5"), R"("evil_\u202egpj.h5")");
  EXPECT_EQ(LogfmtValue("a\u2028b\u0085c\u2066"), R"("a\u2028b\u0085c\u2066")");
  EXPECT_EQ(LogfmtValue("a\rverdict=ok"), R"("a\rverdict=ok")");
  EXPECT_EQ(LogfmtValue("épоch_☃.h5"), "épоch_☃.h5");
}

}  // namespace
}  // namespace ckptwatch
