#include "base/text_escape.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace ckptwatch {
namespace {

TEST(TextEscape, ValidUtf8PassesThroughEscapeBytes) {
  EXPECT_EQ(EscapeBytes("/data/run 42/épоch_☃.h5"), "/data/run 42/épоch_☃.h5");
  EXPECT_EQ(EscapeBytes(R"(C:\ckpt\x.h5)"), R"(C:\ckpt\x.h5)");
}

TEST(TextEscape, InvalidBytesBecomeHexEscapes) {
  EXPECT_EQ(EscapeBytes("ckpt_\xff\xfe.h5"), R"(ckpt_\xff\xfe.h5)");
  EXPECT_EQ(EscapeBytes("\xc3"), R"(\xc3)");            // cut short
  EXPECT_EQ(EscapeBytes("\xc0\xaf"), R"(\xc0\xaf)");    // overlong '/'
  EXPECT_EQ(EscapeBytes("\xed\xa0\x80"), R"(\xed\xa0\x80)");  // surrogate
  EXPECT_TRUE(IsValidUtf8(EscapeBytes("\x80\xbf\xf5\xf8")));
}

TEST(TextEscape, LiteralEscapeTextNeverPrintsLikeTheByte) {
  EXPECT_EQ(EscapeBytes(R"(ckpt_\xff.h5)"), R"(ckpt_\x5cxff.h5)");
  EXPECT_NE(EscapeBytes(R"(ckpt_\xff.h5)"), EscapeBytes("ckpt_\xff.h5"));
}

TEST(TextEscape, UnescapeBytesInvertsEscapeBytes) {
  const std::vector<std::string> names = {"",          "plain.h5",     "ckpt_\xff\xfe.h5",
                                          R"(\xff)",   R"(\x5c)",      "\\\xff",
                                          R"(\\xab)",  "\\x\xff",      "a\\",
                                          "\\xa",      "é\xe9",        R"(\xFF)"};
  std::set<std::string> escaped;
  for (const std::string& name : names) {
    EXPECT_EQ(UnescapeBytes(EscapeBytes(name)), name) << EscapeBytes(name);
    EXPECT_TRUE(escaped.insert(EscapeBytes(name)).second) << EscapeBytes(name);
  }
}

TEST(TextEscape, DisplayEscapesControlsBidiAndInvalidBytes) {
  EXPECT_EQ(EscapeForDisplay("a\nb\x1b[31m\x7f", false), R"(a\nb\u001b[31m\u007f)");
  // RIGHT-TO-LEFT OVERRIDE would show "evil_gpj.h5" as "evil_5h.jpg".
  EXPECT_EQ(EscapeForDisplay("evil_\u202egpj.h5", false), R"(evil_\u202egpj.h5)");
  EXPECT_EQ(EscapeForDisplay("\u2066\u2069\u200e\u200f\u061c\u2028\u2029\u0085", false),
            R"(\u2066\u2069\u200e\u200f\u061c\u2028\u2029\u0085)");
  EXPECT_EQ(EscapeForDisplay("\xff" R"(\xff")", true), R"(\xff\\xff\")");
  EXPECT_EQ(EscapeForDisplay("snow ☃ é", false), "snow ☃ é");
}

TEST(TextEscape, PrefixNeverSplitsACharacter) {
  EXPECT_EQ(Utf8Prefix("ab☃", 4), "ab");
  EXPECT_EQ(Utf8Prefix("ab☃", 5), "ab☃");
  EXPECT_EQ(Utf8Prefix("ab\xff\xfe", 3), "ab\xff");
  EXPECT_EQ(Utf8Prefix("short", 100), "short");
}

TEST(TextEscape, SuffixNeverStartsInsideACharacter) {
  EXPECT_EQ(Utf8Suffix("\xe2\x98\x83"
                       "ab",
                       4),
            "ab");
  EXPECT_EQ(Utf8Suffix("\xe2\x98\x83"
                       "ab",
                       5),
            "\xe2\x98\x83"
            "ab");
  EXPECT_EQ(Utf8Suffix("x\xf0\x9f\x98\x80", 3), "");
  // A stray continuation byte is a unit of its own: kept, as Utf8Prefix() keeps one.
  EXPECT_EQ(Utf8Suffix("ab\x98"
                       "cd",
                       3),
            "\x98"
            "cd");
  EXPECT_EQ(Utf8Suffix("short", 100), "short");
}

}  // namespace
}  // namespace ckptwatch
