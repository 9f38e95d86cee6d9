// The verdict names are an interface: the code's list is the truth, and every page or usage
// text that lists them must list exactly these, in this order (issue 25: docs said eleven
// verdicts when there were thirteen).
#include "verify/verdict.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace ckptwatch {
namespace {

std::vector<std::string> AllNames() {
  std::vector<std::string> names;
  for (Verdict v : kAllVerdicts) names.emplace_back(VerdictName(v));
  return names;
}

// The source tree (CKPTWATCH_SOURCE_DIR, else the one CMake built from); "" skips.
std::string SourceDir() {
  const char* dir = std::getenv("CKPTWATCH_SOURCE_DIR");
#ifdef CKPTWATCH_TEST_SOURCE_DIR
  if (dir == nullptr) dir = CKPTWATCH_TEST_SOURCE_DIR;
#endif
  return dir == nullptr ? "" : dir;
}

std::string ReadDoc(const std::string& relative) {
  std::ifstream in(SourceDir() + "/" + relative, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The names `pattern`'s first group matches in `text`, in order.
std::vector<std::string> Matches(const std::string& text, const std::string& pattern) {
  std::vector<std::string> out;
  const std::regex re(pattern);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it)
    out.push_back((*it)[1].str());
  return out;
}

// The text from `start` to the next blank line.
std::string Paragraph(const std::string& doc, const std::string& start) {
  const std::size_t from = doc.find(start);
  if (from == std::string::npos) return "";
  const std::size_t to = doc.find("\n\n", from);
  return doc.substr(from, to == std::string::npos ? std::string::npos : to - from);
}

TEST(Verdict, NamesAreUniqueAndParseBack) {
  const std::vector<std::string> names = AllNames();
  EXPECT_EQ(names.size(), static_cast<std::size_t>(std::size(kAllVerdicts)));
  for (Verdict v : kAllVerdicts) {
    EXPECT_NE(VerdictName(v), "unknown");
    EXPECT_EQ(ParseVerdict(VerdictName(v)), v) << VerdictName(v);
  }
  EXPECT_EQ(ParseVerdict("not_hdf5"), Verdict::kNotCheckpoint)
      << "the name before 0.3.0 still reads";
}

TEST(VerdictDocs, TheVerifyPageTableHasARowPerVerdictInOrderAndOnlyOkIsOk) {
  if (SourceDir().empty()) GTEST_SKIP() << "CKPTWATCH_SOURCE_DIR is not set";
  const std::string doc = ReadDoc("docs/verify.md");
  const std::string table = Paragraph(doc, "| verdict | ok | meaning | what to do |");
  ASSERT_FALSE(table.empty()) << "docs/verify.md has no verdict table";
  EXPECT_EQ(Matches(table, R"(\n\| `([a-z_]+)` \|)"), AllNames()) << table.substr(0, 200);
  EXPECT_EQ(Matches(table, R"(\n\| `([a-z_]+)` \| yes \|)"), std::vector<std::string>{"ok"});
}

TEST(VerdictDocs, EveryListOfVerdictsIsTheCodesList) {
  if (SourceDir().empty()) GTEST_SKIP() << "CKPTWATCH_SOURCE_DIR is not set";
  EXPECT_EQ(
      Matches(Paragraph(ReadDoc("docs/metrics.md"), "Verdicts (`verdict`):"), R"(`([a-z_]+)`)"),
      [] {
        std::vector<std::string> names{"verdict"};
        for (const std::string& n : AllNames()) names.push_back(n);
        return names;
      }())
      << "docs/metrics.md, the verdict label's values";
  const std::string man = ReadDoc("docs/ckptwatch.8.md");
  const std::size_t section = man.find("# VERDICTS\n\n");
  ASSERT_NE(section, std::string::npos) << "docs/ckptwatch.8.md has no VERDICTS section";
  EXPECT_EQ(Matches(Paragraph(man.substr(section + 12), "**"), R"(\*\*([a-z_]+)\*\*)"), AllNames())
      << "docs/ckptwatch.8.md, VERDICTS";
}

}  // namespace
}  // namespace ckptwatch
