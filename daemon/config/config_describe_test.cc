// The table as output: check-config's YAML, docs/config.md, and reload planning.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "config/config.h"
#include "config/config_table.h"
#include "config/config_test_util.h"

namespace ckptwatch {
namespace {

using namespace ckptwatch::testing;
using config_table::Key;
using config_table::Keys;
using config_table::kWatchPrefix;
using config_table::Type;

TEST(Config, DescribeRoundTripsAndShowsUnsetKeys) {
  const Config config = Load(R"(
log: {format: json}
metrics: {listen: "[::1]:9100", basic_auth: {username: "odd name: yes", password_file: /p}}
watches:
  - name: "a.b-c"
    path: "/data/with space/and\"quote"
    patterns: ["*.h5", "weird 'glob' [0-9]*"]
    min_free: 2.5%
    expect_every: 1d2h
    writer: root
    readers: [root, group:root, "77"]
  - path: /plain
)");
  const std::string text = DescribeEffectiveConfig(config);
  EXPECT_NE(text.find("  # file: (not set)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    # writer: (not set)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  - name: a.b-c\n    path: \"/data/with space/and\\\"quote\"\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("    min_free: \"2.5%\"\n"), std::string::npos) << text;
  Config again;
  std::string err;
  ASSERT_TRUE(LoadConfigString(text, config.source, &again, &err)) << err << "\n" << text;
  EXPECT_EQ(again, config) << text;
  // And the default config, which has every optional key unset.
  const Config defaults = DefaultConfig();
  ASSERT_TRUE(LoadConfigString(DescribeEffectiveConfig(defaults), defaults.source, &again, &err))
      << err;
  EXPECT_EQ(again, defaults);
}

TEST(Config, ReferenceTableCoversEveryKeyOnce) {
  const std::string table = ConfigReferenceMarkdown();
  const std::vector<std::string> rows = Lines(table);
  ASSERT_GT(rows.size(), 2u);
  EXPECT_EQ(rows[0], "| Key | Type | Default | Range | Reload | Meaning |");
  for (const char* key : {"`log.file`", "`metrics.listen`", "`verify.max_parallel`",
                          "`watches[].settle`", "`watches[].readers`"}) {
    EXPECT_EQ(std::count(rows.begin(), rows.end(), std::string()), 0);
    size_t found = 0;
    for (const std::string& row : rows) found += row.rfind(std::string("| ") + key + " |", 0) == 0;
    EXPECT_EQ(found, 1u) << key;
  }
  EXPECT_NE(table.find("| `watches[].settle` | duration | `1s` | `0s` – `1h` | live |"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("| `watches[].path` | path | required |  | restarts watch |"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("| `metrics.listen` | host:port | `127.0.0.1:" +
                       std::to_string(kDefaultMetricsPort) + "` |  | restart |"),
            std::string::npos)
      << table;
}

TEST(ConfigFiles, ShippedConfigsLoad) {
  if (SourceDir().empty()) GTEST_SKIP() << "CKPTWATCH_SOURCE_DIR is not set";
  for (const char* name : {"config/ckptwatch.yaml", "config/example.yaml"}) {
    Config config;
    std::string err;
    EXPECT_TRUE(LoadConfigFile(SourceDir() + "/" + name, &config, &err)) << name << ":\n" << err;
  }
}

TEST(ConfigFiles, DocsEmbedTheGeneratedReferenceTable) {
  if (SourceDir().empty()) GTEST_SKIP() << "CKPTWATCH_SOURCE_DIR is not set";
  const std::string path = SourceDir() + "/docs/config.md";
  const std::string begin = "<!-- BEGIN GENERATED -->\n";
  const std::string end = "<!-- END GENERATED -->";
  std::string doc = ReadFile(path);
  const size_t from = doc.find(begin);
  const size_t to = doc.find(end);
  ASSERT_NE(from, std::string::npos) << path << " has no " << begin;
  ASSERT_NE(to, std::string::npos) << path << " has no " << end;
  ASSERT_LT(from, to);
  const std::string generated = ConfigReferenceMarkdown();
  const std::string embedded = doc.substr(from + begin.size(), to - from - begin.size());
  if (embedded != generated && std::getenv("CKPTWATCH_UPDATE_DOCS") != nullptr) {
    doc.replace(from + begin.size(), embedded.size(), generated);
    std::ofstream(path, std::ios::binary) << doc;
    return;
  }
  EXPECT_EQ(embedded, generated)
      << path << " is out of date with the key table in daemon/config/config_table.cc; regenerate it with "
      << "CKPTWATCH_SOURCE_DIR=" << SourceDir() << " CKPTWATCH_UPDATE_DOCS=1 ckptwatch_tests "
      << "--gtest_filter=ConfigFiles.DocsEmbedTheGeneratedReferenceTable";
}

// ---- PlanReload ----------------------------------------------------------------------------

// `values` (dotted key -> YAML text) as one YAML flow map: {log: {file: /a}, ...}.
std::string FlowMap(const std::map<std::string, std::string>& values) {
  std::map<std::string, std::map<std::string, std::string>> sections;
  std::string text;
  for (const auto& [key, value] : values) {
    const size_t dot = key.find('.');
    if (dot == std::string::npos) {
      text += (text.empty() ? "" : ", ") + key + ": " + value;
    } else {
      sections[key.substr(0, dot)][key.substr(dot + 1)] = value;
    }
  }
  for (const auto& [name, section] : sections) {
    text += (text.empty() ? "" : ", ") + name + ": " + FlowMap(section);
  }
  return "{" + text + "}";
}

// A valid value of `key` that is not the default; `changed` gives a second one, different.
std::string ValueOf(const Key& key, bool changed) {
  switch (key.type) {
    case Type::kInt:
    case Type::kDuration:
    case Type::kSize:
      return std::string(changed ? key.max : key.min);
    case Type::kString:
      return changed ? "u2" : "u1";
    case Type::kName:
      return changed ? "a2" : "a";
    case Type::kPath:
      return changed ? "/data/a2" : "/data/a";
    case Type::kListen:
      return changed ? "\"127.0.0.1:2\"" : "\"127.0.0.1:1\"";
    case Type::kBool:  // Baseline true: run_depth > 0 needs recursive: true.
      return changed ? "false" : "true";
    case Type::kFreeSpace:
      return changed ? "\"2%\"" : "\"1%\"";
    case Type::kGlobs:
      return changed ? "[\"*.b\"]" : "[\"*.a\"]";
    case Type::kUser:  // Ids need not exist on this host.
      return changed ? "1002" : "1001";
    case Type::kPrincipals:
      return changed ? "[1002]" : "[1001]";
    case Type::kVersion:
      return changed ? "\"3.6\"" : "\"2.15\"";
    case Type::kEnum:
      return std::visit(
          [&](auto field) -> std::string {
            using T = std::remove_pointer_t<decltype(field(nullptr, nullptr))>;
            if constexpr (std::is_enum_v<T>) {
              const auto choices = config_table::ChoicesOf(static_cast<T*>(nullptr));
              return std::string(changed ? choices.back() : choices.front());
            } else {
              return "";
            }
          },
          key.field);
  }
  return "";
}

// Every key set, in watch "a" for a watches[] key, with `changed`'s value taking its second
// value; watch "b" stays as it is.
std::string EveryKeyYaml(const Key* changed) {
  std::map<std::string, std::string> global, watch;
  for (const Key& key : Keys()) {
    const std::string value = ValueOf(key, &key == changed);
    if (key.name.starts_with(kWatchPrefix)) {
      watch[std::string(key.name.substr(kWatchPrefix.size()))] = value;
    } else {
      global[std::string(key.name)] = value;
    }
  }
  std::string& watches = global["watches"];  // Appended: see Code() in config_describe.cc.
  watches = "[";
  watches += FlowMap(watch) + ", {name: b, path: /data/b}]";
  return FlowMap(global) + "\n";
}

TEST(ConfigReload, EachKeysChangeLandsWhereItsRowSays) {
  const Config old = Load(EveryKeyYaml(nullptr));
  ASSERT_EQ(old.watches.size(), 2u);
  for (const Key& key : Keys()) {
    // Renaming is removing a watch and adding one: RenamedWatchIsRemovedAndAdded.
    if (key.name == "watches[].name") continue;
    SCOPED_TRACE(std::string(key.name) + " is " + std::string(ReloadEffectName(key.reload)));
    const Config next = Load(EveryKeyYaml(&key));
    ASSERT_NE(old, next) << "the test's two values load equal";
    const ReloadPlan plan = PlanReload(old, next);
    std::vector<std::string> blockers, restarts;
    switch (key.reload) {
      case ReloadEffect::kLive:
        break;
      case ReloadEffect::kRestartWatch:
        restarts = {"a"};
        break;
      case ReloadEffect::kRestartProcess:
        blockers = {key.name.starts_with(kWatchPrefix)
                        ? "watches[a]." + std::string(key.name.substr(kWatchPrefix.size()))
                        : std::string(key.name)};
        break;
    }
    EXPECT_EQ(plan.blockers, blockers);
    EXPECT_EQ(plan.restart_watches, restarts);
    EXPECT_EQ(ReloadBlockers(old, next), blockers);
  }
}

TEST(ConfigReload, EqualConfigsNeedNothing) {
  for (const Config& config : {DefaultConfig(), Load(EveryKeyYaml(nullptr))}) {
    const ReloadPlan plan = PlanReload(config, config);
    EXPECT_TRUE(plan.blockers.empty());
    EXPECT_TRUE(plan.restart_watches.empty());
  }
}

TEST(ConfigReload, AddedAndRemovedWatchesAreNotRestarts) {
  const Config one = Load("watches: [{name: a, path: /a}]\n");
  const Config two = Load("watches: [{name: a, path: /a}, {name: b, path: /b, backend: poll}]\n");
  const Config other = Load("watches: [{name: b, path: /b}]\n");
  auto restarts = [](const Config& old, const Config& next) {
    const ReloadPlan plan = PlanReload(old, next);
    EXPECT_TRUE(plan.blockers.empty());
    return plan.restart_watches;
  };
  EXPECT_TRUE(restarts(one, two).empty());    // b added
  EXPECT_TRUE(restarts(two, one).empty());    // b removed
  EXPECT_TRUE(restarts(one, other).empty());  // a removed, b added
  // The one watch in both changed its backend.
  EXPECT_EQ(restarts(two, other), std::vector<std::string>{"b"});
}

TEST(ConfigReload, RenamedWatchIsRemovedAndAdded) {
  const Config old = Load("watches: [{name: a, path: /a}]\n");
  const Config next = Load("watches: [{name: renamed, path: /a, recursive: true}]\n");
  const ReloadPlan plan = PlanReload(old, next);
  EXPECT_TRUE(plan.blockers.empty());
  EXPECT_TRUE(plan.restart_watches.empty());
}

TEST(ConfigReload, SeveralChangesAtOnce) {
  const Config old = Load(R"(
log: {level: info}
metrics: {listen: "127.0.0.1:1"}
watches:
  - {name: a, path: /a}
  - {name: b, path: /b}
  - {name: c, path: /c}
  - {name: d, path: /d}
)");
  const Config next = Load(R"(
log: {level: debug, format: json, file: /var/log/ckptwatch.log}
metrics: {listen: "0.0.0.0:1", basic_auth: {username: u, password_file: /p}}
verify: {max_parallel: 8, level: full}
watches:
  - {name: d, path: /d, settle: 5s, patterns: ["*.ckpt"], expect_every: 1h}
  - {name: c, path: /c, backend: poll, recursive: true}
  - {name: b, path: /b2}
  - {name: e, path: /e}
)");
  const ReloadPlan plan = PlanReload(old, next);
  EXPECT_EQ(plan.blockers,
            (std::vector<std::string>{"metrics.listen", "metrics.basic_auth.username",
                                      "metrics.basic_auth.password_file"}));
  // In the new file's order, c once for its two changes; d changed only live keys, a is gone.
  EXPECT_EQ(plan.restart_watches, (std::vector<std::string>{"c", "b"}));
}

}  // namespace
}  // namespace ckptwatch
