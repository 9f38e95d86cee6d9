#include "config/units.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>

namespace ckptwatch {
namespace {

using std::chrono::milliseconds;

milliseconds Duration(std::string_view text) {
  milliseconds d{-1};
  std::string err;
  EXPECT_TRUE(ParseDuration(text, &d, &err)) << text << ": " << err;
  return d;
}

std::string DurationError(std::string_view text) {
  milliseconds d{-1};
  std::string err;
  EXPECT_FALSE(ParseDuration(text, &d, &err)) << text;
  EXPECT_EQ(d, milliseconds{-1}) << "output written on failure for " << text;
  return err;
}

std::uint64_t Size(std::string_view text) {
  std::uint64_t n = 0;
  std::string err;
  EXPECT_TRUE(ParseSize(text, &n, &err)) << text << ": " << err;
  return n;
}

std::string SizeError(std::string_view text) {
  std::uint64_t n = 0;
  std::string err;
  EXPECT_FALSE(ParseSize(text, &n, &err)) << text;
  return err;
}

TEST(Duration, ParsesEveryUnit) {
  EXPECT_EQ(Duration("300ms"), milliseconds(300));
  EXPECT_EQ(Duration("10s"), milliseconds(10'000));
  EXPECT_EQ(Duration("30m"), milliseconds(30 * 60'000));
  EXPECT_EQ(Duration("2h"), milliseconds(2 * 3'600'000));
  EXPECT_EQ(Duration("1d"), milliseconds(86'400'000));
  EXPECT_EQ(Duration("0s"), milliseconds(0));
}

TEST(Duration, BareNumberIsSeconds) {
  EXPECT_EQ(Duration("90"), milliseconds(90'000));
  EXPECT_EQ(Duration("0"), milliseconds(0));
}

TEST(Duration, ParsesCompoundTermsInFallingOrder) {
  EXPECT_EQ(Duration("1h30m"), milliseconds(90 * 60'000));
  EXPECT_EQ(Duration("1d2h3m4s5ms"), milliseconds(93'784'005));
  EXPECT_NE(DurationError("30m1h"), "");
  EXPECT_NE(DurationError("1m1m"), "");
  EXPECT_NE(DurationError("1h30"), "");  // Likely a slip for 1h30m, not 1h30s.
}

TEST(Duration, RejectsJunkWithTheInputQuoted) {
  EXPECT_EQ(DurationError("1 sec"), "'1 sec' is not a duration (e.g. 500ms, 10s, 5m, 1h30m)");
  for (std::string_view junk : {"", " ", "s", "10 s", " 10s", "10s ", "1.5s", "+5s", "10S", "10sec",
                                "10us", "1e3", "0x10", "10ss", "10s\n", "∞"}) {
    EXPECT_NE(DurationError(junk), "") << junk;
  }
}

TEST(Duration, RejectsNegatives) {
  EXPECT_EQ(DurationError("-5s"),
            "'-5s' is negative; durations are 0 or more (e.g. 500ms, 10s, "
            "5m, 1h30m)");
}

TEST(Duration, RejectsOverflowInsteadOfWrapping) {
  EXPECT_EQ(Duration("106751991167d"), milliseconds(106751991167LL * 86'400'000));
  EXPECT_NE(DurationError("106751991168d").find("too long"), std::string::npos);
  EXPECT_NE(DurationError("99999999999999999999999s").find("too long"), std::string::npos);
  EXPECT_NE(DurationError("9223372036854775807s").find("too long"), std::string::npos);
}

TEST(Duration, FormatsCanonically) {
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1s500ms");
  EXPECT_EQ(FormatDuration(milliseconds(300'000)), "5m");
  EXPECT_EQ(FormatDuration(milliseconds(5'400'000)), "1h30m");
  EXPECT_EQ(FormatDuration(milliseconds(86'400'000)), "1d");
  EXPECT_EQ(FormatDuration(milliseconds::max()), "106751991167d7h12m55s807ms");
}

TEST(Size, ParsesBinarySiAndBareBytes) {
  EXPECT_EQ(Size("1024"), 1024u);
  EXPECT_EQ(Size("0"), 0u);
  EXPECT_EQ(Size("7B"), 7u);
  EXPECT_EQ(Size("512MiB"), 512u << 20);
  EXPECT_EQ(Size("8GiB"), 8ull << 30);
  EXPECT_EQ(Size("10GB"), 10'000'000'000ull);
  EXPECT_EQ(Size("1kB"), 1000u);
  EXPECT_EQ(Size("1KB"), 1000u);
  EXPECT_EQ(Size("1KiB"), 1024u);
  EXPECT_EQ(Size("15EiB"), 15ull << 60);
}

TEST(Size, RejectsAmbiguousUnitsWithAHint) {
  EXPECT_EQ(SizeError("10G"),
            "'10G' has an ambiguous unit; write 10GiB (powers of 1024) or 10GB (powers of 1000)");
  EXPECT_EQ(SizeError("4k"),
            "'4k' has an ambiguous unit; write 4KiB (powers of 1024) or 4kB (powers of 1000)");
  EXPECT_NE(SizeError("10gb"), "");
  EXPECT_NE(SizeError("10Gi"), "");
  EXPECT_NE(SizeError("10mib"), "");
}

TEST(Size, RejectsJunkNegativesAndOverflow) {
  EXPECT_EQ(SizeError("10 GB"), "'10 GB' is not a size (e.g. 512MiB, 8GiB, 10GB, 1024)");
  EXPECT_NE(SizeError("-1GiB").find("negative"), std::string::npos);
  EXPECT_NE(SizeError("16EiB").find("too large"), std::string::npos);
  EXPECT_NE(SizeError("18446744073709551616").find("too large"), std::string::npos);
  EXPECT_EQ(Size("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
  for (std::string_view junk : {"", "GiB", "1.5GiB", "1GiBB", "0x10", "+1", "1 ", "5%", "1b"}) {
    EXPECT_NE(SizeError(junk), "") << junk;
  }
}

TEST(Size, FormatsWithTheExactUnitOfSmallestNumber) {
  EXPECT_EQ(FormatSize(0), "0");
  EXPECT_EQ(FormatSize(1000), "1kB");
  EXPECT_EQ(FormatSize(1023), "1023");
  EXPECT_EQ(FormatSize(8ull << 30), "8GiB");
  EXPECT_EQ(FormatSize(10'000'000'000ull), "10GB");
  EXPECT_EQ(FormatSize(1'024'000), "1000KiB");  // Not 1024kB.
  EXPECT_EQ(FormatSize(1'000'000'000'000ull), "1TB");
}

TEST(SpaceThreshold, ParsesSizesAndPercentages) {
  SpaceThreshold t;
  std::string err;
  ASSERT_TRUE(ParseSpaceThreshold("10GiB", &t, &err)) << err;
  EXPECT_FALSE(t.is_percent);
  EXPECT_EQ(t.bytes, 10ull << 30);
  EXPECT_EQ(t.BytesOf(1ull << 40), 10ull << 30);
  ASSERT_TRUE(ParseSpaceThreshold("5%", &t, &err)) << err;
  EXPECT_TRUE(t.is_percent);
  EXPECT_EQ(t.percent, 5.0);
  EXPECT_EQ(t.BytesOf(1000), 50u);
  ASSERT_TRUE(ParseSpaceThreshold("2.5%", &t, &err)) << err;
  EXPECT_EQ(t.percent, 2.5);
  EXPECT_EQ(t.BytesOf(std::numeric_limits<std::uint64_t>::max()),
            std::numeric_limits<std::uint64_t>::max() / 40);
  ASSERT_TRUE(ParseSpaceThreshold("100%", &t, &err)) << err;
}

TEST(SpaceThreshold, RejectsBadPercentages) {
  SpaceThreshold t;
  std::string err;
  EXPECT_FALSE(ParseSpaceThreshold("0%", &t, &err));
  EXPECT_EQ(err, "'0%' is out of range (more than 0%, at most 100%)");
  EXPECT_FALSE(ParseSpaceThreshold("101%", &t, &err));
  EXPECT_NE(err.find("out of range"), std::string::npos);
  EXPECT_FALSE(ParseSpaceThreshold("ten", &t, &err));
  EXPECT_EQ(err, "'ten' is not a size or a percentage (e.g. 10GiB, 5%)");
  for (std::string_view junk : {"%", "-5%", "5 %", "5.%", ".5%", "1.2345%", "1e1%", "nan%", "inf%",
                                "5%%", "5.5.5%", "99999999999999999999999%"}) {
    EXPECT_FALSE(ParseSpaceThreshold(junk, &t, &err)) << junk;
  }
}

TEST(SpaceThreshold, FormatsBack) {
  EXPECT_EQ(FormatSpaceThreshold({.is_percent = true, .bytes = 0, .percent = 5}), "5%");
  EXPECT_EQ(FormatSpaceThreshold({.is_percent = true, .bytes = 0, .percent = 0.125}), "0.125%");
  EXPECT_EQ(FormatSpaceThreshold({.is_percent = true, .bytes = 0, .percent = 2.5}), "2.5%");
  EXPECT_EQ(FormatSpaceThreshold({.is_percent = false, .bytes = 10ull << 30, .percent = 0}),
            "10GiB");
}

TEST(QuoteForMessage, EscapesAndTruncatesHostileText) {
  EXPECT_EQ(QuoteForMessage("10s"), "'10s'");
  EXPECT_EQ(QuoteForMessage("a'b\\c"), "'a\\'b\\\\c'");
  EXPECT_EQ(QuoteForMessage(std::string_view("x\n\0\x1b", 4)), "'x\\x0a\\x00\\x1b'");
  EXPECT_EQ(QuoteForMessage(std::string(1000, 'a')), "'" + std::string(64, 'a') + "...'");
}

// Random strings over the parsers' alphabet: never a crash, and every accepted input
// formats to text that parses back to the same value.
TEST(Units, SurviveRandomInputAndRoundTrip) {
  std::mt19937 rng(42);
  using namespace std::string_literals;
  const std::string alphabet = "0123456789dhmsBKMGTPEikb%.- \x00\xff"s;  // Keeps the NUL.
  int accepted = 0;
  for (int i = 0; i < 100'000; ++i) {
    std::string text;
    const int length = static_cast<int>(rng() % 12);
    for (int j = 0; j < length; ++j) text += alphabet[rng() % alphabet.size()];
    std::string err;
    milliseconds d{};
    if (ParseDuration(text, &d, &err)) {
      ++accepted;
      milliseconds again{};
      ASSERT_TRUE(ParseDuration(FormatDuration(d), &again, &err)) << text;
      ASSERT_EQ(again, d) << text;
    } else {
      ASSERT_FALSE(err.empty()) << text;
    }
    std::uint64_t n = 0;
    if (ParseSize(text, &n, &err)) {
      ++accepted;
      std::uint64_t again = 0;
      ASSERT_TRUE(ParseSize(FormatSize(n), &again, &err)) << text;
      ASSERT_EQ(again, n) << text;
    }
    SpaceThreshold t;
    if (ParseSpaceThreshold(text, &t, &err)) {
      ++accepted;
      SpaceThreshold again;
      ASSERT_TRUE(ParseSpaceThreshold(FormatSpaceThreshold(t), &again, &err)) << text;
      ASSERT_EQ(again, t) << text;
    }
  }
  EXPECT_GT(accepted, 1000);  // The alphabet does reach the success paths.
}

TEST(Units, RandomValuesRoundTripThroughText) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100'000; ++i) {
    // Mostly round numbers, which exercise the unit choices, plus raw ones.
    std::uint64_t n = rng() >> (rng() % 64);
    if (i % 2) n = (n % 100'000) << (10 * (rng() % 6));
    std::uint64_t size = 0;
    std::string err;
    ASSERT_TRUE(ParseSize(FormatSize(n), &size, &err)) << n << ": " << err;
    ASSERT_EQ(size, n);
    const milliseconds d(static_cast<std::int64_t>(n >> 1));
    milliseconds back{};
    ASSERT_TRUE(ParseDuration(FormatDuration(d), &back, &err)) << d.count() << ": " << err;
    ASSERT_EQ(back, d);
  }
}

}  // namespace
}  // namespace ckptwatch
