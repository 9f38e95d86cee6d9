// The set layouts are an interface (a metric label, a docs table): the code's list is the truth,
// and docs/checkpoint-sets.md's layouts table lists exactly these.
#include "verify/sets/checkpoint_set.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace ckptwatch {
namespace {

std::string ReadSetDoc(const std::string& relative) {
  const char* dir = std::getenv("CKPTWATCH_SOURCE_DIR");
#ifdef CKPTWATCH_TEST_SOURCE_DIR
  if (dir == nullptr) dir = CKPTWATCH_TEST_SOURCE_DIR;
#endif
  std::ifstream in(std::string(dir ? dir : ".") + "/" + relative, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(SetLayoutNames, TheDocsTableListsEveryLayoutTheCodeKnowsAndNoOther) {
  const std::string doc = ReadSetDoc("docs/checkpoint-sets.md");
  ASSERT_FALSE(doc.empty()) << "docs/checkpoint-sets.md not found";
  const std::size_t start = doc.find("## Layouts and commit points");
  ASSERT_NE(start, std::string::npos);
  const std::string section = doc.substr(start, doc.find("\n## ", start + 1) - start);
  std::set<std::string> documented;
  static const std::regex row(R"(\n\| `([a-z0-9_]+)` \|)");
  for (auto it = std::sregex_iterator(section.begin(), section.end(), row);
       it != std::sregex_iterator(); ++it)
    documented.insert((*it)[1]);
  std::set<std::string> known(std::begin(kSetLayouts), std::end(kSetLayouts));
  EXPECT_EQ(documented, known);
}

}  // namespace
}  // namespace ckptwatch
