// Loading a config document: the walk over its maps and the watches list, unknown keys with a
// did-you-mean, checks across watches, and errors collected with their file:line:column.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include "config/config_table.h"

namespace ckptwatch {
namespace config_table {

Diagnostics::Diagnostics(std::string source, std::filesystem::path base_dir)
    : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

void Diagnostics::Error(const YAML::Mark& mark, std::string_view key, std::string_view message) {
  std::string line = Location(mark) + ": ";
  if (!key.empty()) line += std::string(key) + ": ";
  errors_.push_back({mark, line + std::string(message)});
  keys_in_error_.insert(std::string(key));
}

YAML::Mark Diagnostics::MarkOf(const std::string& key) const {
  auto it = marks_.find(key);
  return it == marks_.end() ? YAML::Mark::null_mark() : it->second;
}

std::string Diagnostics::Location(const YAML::Mark& mark) const {
  if (mark.is_null() || mark.line < 0) return source_;
  return source_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

std::string Diagnostics::Report() {
  constexpr size_t kMaxErrors = 20;
  std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
    return std::pair(a.first.line, a.first.column) < std::pair(b.first.line, b.first.column);
  });
  std::string text;
  for (size_t i = 0; i < errors_.size() && i < kMaxErrors; ++i) {
    if (i > 0) text += '\n';
    text += errors_[i].second;
  }
  if (errors_.size() > kMaxErrors) {
    text += "\n... and " + std::to_string(errors_.size() - kMaxErrors) + " more errors";
  }
  return text;
}

}  // namespace config_table

namespace {

using namespace config_table;
namespace fs = std::filesystem;

constexpr size_t kMaxWatches = 4096;
constexpr size_t kMaxConfigBytes = 1 << 20;

class Loader : public Diagnostics {
 public:
  using Diagnostics::Diagnostics;

  void LoadDocument(const YAML::Node& root, Config* config);

 private:
  // Per watch, what the cross-checks after the walk need.
  struct WatchSite {
    YAML::Mark mark, name_mark, path_mark;
    bool name_given = false, level_given = false, load_target_given = false;
  };

  void ApplyDefaults(std::string_view prefix, Config* config, WatchConfig* watch);
  void WalkMap(const YAML::Node& map, std::string_view prefix, const std::string& display,
               Config* config, WatchConfig* watch, std::map<std::string, YAML::Mark>* seen);
  void WalkWatches(const YAML::Node& key_node, const YAML::Node& list, Config* config);
  void UnknownKey(const YAML::Node& key_node, std::string_view prefix, const std::string& display,
                  const std::string& name);
  void CheckWatches(Config* config);

  std::vector<WatchSite> watch_sites_;
};

void Loader::ApplyDefaults(std::string_view prefix, Config* config, WatchConfig* watch) {
  for (const Key& key : Keys()) {
    if (key.presence != Presence::kDefault || !StartsWith(key.name, prefix)) continue;
    if (prefix.empty() && StartsWith(key.name, kWatchPrefix)) continue;
    // Defaults are YAML parsed by the same code as the file, so they obey the same rules.
    Assign(*this, Site{&key, std::string(key.name), YAML::Mark::null_mark()},
           YAML::Load(std::string(key.default_text)), config, watch);
  }
}

void Loader::UnknownKey(const YAML::Node& key_node, std::string_view prefix,
                        const std::string& display, const std::string& name) {
  const std::vector<std::string_view> siblings = ChildrenOf(prefix);
  std::string message = "unknown key";
  if (std::optional<std::string_view> close = Closest(name, siblings)) {
    message += "; did you mean '" + std::string(*close) + "'?";
  } else {
    // Right name, wrong place: "level" at the top means log.level, verify.level or a watch's.
    std::vector<std::string_view> elsewhere;
    for (const Key& key : Keys()) {
      const std::string_view leaf = key.name.substr(key.name.rfind('.') + 1);
      if (leaf == name) elsewhere.push_back(key.name);
    }
    if (!elsewhere.empty()) message += "; did you mean " + JoinOr(elsewhere, " or ") + "?";
    if (elsewhere.empty() && !siblings.empty()) {
      message += " (known here: " + JoinOr(siblings, ", ") + ")";
    }
  }
  Error(key_node.Mark(), display + name, message);
}

void Loader::WalkMap(const YAML::Node& map, std::string_view prefix, const std::string& display,
                     Config* config, WatchConfig* watch, std::map<std::string, YAML::Mark>* seen) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies: yaml-cpp's it-> points into a temporary.
    const YAML::Node key_node = it->first;
    const YAML::Node value = it->second;
    if (!key_node.IsScalar()) {
      Error(key_node.Mark(), display.empty() ? "" : display.substr(0, display.size() - 1),
            "keys must be plain names, got " + std::string(NodeWord(key_node)));
      continue;
    }
    const std::string& name = key_node.Scalar();
    const std::string schema = std::string(prefix) + name;
    const std::string shown = display + name;
    const YAML::Mark key_mark = key_node.Mark();
    // The table's dotted names are paths, not keys: "watches[].name" at the top must not reach
    // a watch field without a watch.
    if (name.find_first_of(".[]") != std::string::npos) {
      Error(key_mark, shown,
            "unknown key; write nested maps, not dotted names (e.g. log: {level: info})");
      continue;
    }
    if (auto [first, inserted] = seen->emplace(name, key_mark); !inserted) {
      Error(key_mark, shown, "duplicate key (first at " + Location(first->second) + ")");
      continue;
    }
    // Null values have no position of their own; the key's is the useful one.
    const YAML::Mark value_mark =
        value.IsNull() || value.Mark().is_null() ? key_mark : value.Mark();
    if (const Key* key = FindKey(schema)) {
      Given(shown, value_mark);
      Assign(*this, Site{key, shown, value_mark}, value, config, watch);
    } else if (schema == kWatchesKey) {
      WalkWatches(key_node, value, config);
    } else if (IsSection(schema)) {
      if (value.IsNull()) continue;  // "log:" with every child commented out.
      if (!value.IsMap()) {
        Error(value_mark, shown,
              "expected a map of keys (" + JoinOr(ChildrenOf(schema + "."), ", ") + "), got " +
                  std::string(NodeWord(value)));
        continue;
      }
      std::map<std::string, YAML::Mark> child_seen;
      WalkMap(value, schema + ".", shown + ".", config, watch, &child_seen);
      for (const Key& key : Keys()) {
        if (key.presence != Presence::kRequired || !StartsWith(key.name, schema + ".")) continue;
        const std::string_view leaf = key.name.substr(schema.size() + 1);
        if (leaf.find('.') == std::string_view::npos && !child_seen.count(std::string(leaf))) {
          Error(value_mark, shown, "missing required key '" + std::string(leaf) + "'");
        }
      }
    } else {
      UnknownKey(key_node, prefix, display, name);
    }
  }
}

void Loader::WalkWatches(const YAML::Node& key_node, const YAML::Node& list, Config* config) {
  const YAML::Mark list_mark = list.IsNull() ? key_node.Mark() : list.Mark();
  if (list.IsNull() || (list.IsSequence() && list.size() == 0)) {
    Error(list_mark, kWatchesKey, "needs at least one watch (a map with a 'path')");
    return;
  }
  if (!list.IsSequence()) {
    Error(list_mark, kWatchesKey,
          "expected a list of watches (\"- path: ...\"), got " + std::string(NodeWord(list)));
    return;
  }
  if (list.size() > kMaxWatches) {
    Error(list_mark, kWatchesKey,
          std::to_string(list.size()) + " watches; at most " + std::to_string(kMaxWatches));
    return;
  }
  WatchConfig defaults;
  ApplyDefaults(kWatchPrefix, config, &defaults);
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node element = list[i];
    const std::string display = "watches[" + std::to_string(i) + "]";
    WatchSite site;
    site.mark = element.Mark().is_null() ? list_mark : element.Mark();
    if (!element.IsMap()) {
      Error(site.mark, display,
            "expected a map with at least 'path', got " + std::string(NodeWord(element)));
      continue;
    }
    WatchConfig watch = defaults;
    std::map<std::string, YAML::Mark> seen;
    WalkMap(element, kWatchPrefix, display + ".", config, &watch, &seen);
    if (!seen.count("path")) {
      Error(site.mark, display, "missing required key 'path'");
      continue;
    }
    if (watch.run_depth > 0 && !watch.recursive) {
      Error(seen.count("run_depth") ? seen["run_depth"] : site.mark, display + ".run_depth",
            "needs recursive: true (a run is a directory below the root)");
    }
    site.name_given = seen.count("name") > 0;
    site.level_given = seen.count("level") > 0;
    site.load_target_given = seen.count("load_target") > 0;
    site.name_mark = site.name_given ? element["name"].Mark() : site.mark;
    site.path_mark = element["path"].Mark();
    config->watches.push_back(std::move(watch));
    watch_sites_.push_back(site);
  }
}

// Paths are capped at 4096 bytes when loaded; show all of one, but escaped.
std::string QuotePath(std::string_view path) { return QuoteForMessage(path, 4096); }

// The metric label for a watch without a name: the last path component, or the last two when
// the last is a generic directory name that many runs share.
std::string DeriveName(const std::string& path) {
  static const std::set<std::string> kGeneric = {"checkpoints", "checkpoint", "ckpt", "ckpts",
                                                 "weights",     "models",     "model"};
  const fs::path p(path);
  std::string name = p.filename().string();
  if (name.empty()) return "root";
  const std::string parent = p.parent_path().filename().string();
  if (kGeneric.count(name) && !parent.empty()) name = parent + "_" + name;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') c = '_';
  }
  if (name.size() > 64) name.resize(64);
  return name;
}

void Loader::CheckWatches(Config* config) {
  std::map<std::string, size_t> by_name, by_path, recursive_by_path;
  for (size_t i = 0; i < config->watches.size(); ++i) {
    WatchConfig& watch = config->watches[i];
    const WatchSite& site = watch_sites_[i];
    const std::string display = "watches[" + std::to_string(i) + "]";
    if (!site.level_given) watch.level = config->verify.level;
    if (!site.load_target_given) {
      watch.load_target_keras = config->verify.load_target_keras;
      watch.load_target_python = config->verify.load_target_python;
    }
    if (!site.name_given) watch.name = DeriveName(watch.path);
    if (auto [first, inserted] = by_name.emplace(watch.name, i); !inserted) {
      Error(site.name_mark, display + ".name",
            QuoteForMessage(watch.name) + (site.name_given ? "" : " (derived from path)") +
                " is already the name of watches[" + std::to_string(first->second) + "] at " +
                Location(watch_sites_[first->second].mark) + "; names must be unique");
    }
    if (auto [first, inserted] = by_path.emplace(watch.path, i); !inserted) {
      Error(site.path_mark, display + ".path",
            QuotePath(watch.path) + " is also the path of watches[" +
                std::to_string(first->second) + "] at " +
                Location(watch_sites_[first->second].mark));
    }
    if (watch.recursive) recursive_by_path.emplace(watch.path, i);
  }
  for (size_t i = 0; i < config->watches.size(); ++i) {
    const WatchConfig& watch = config->watches[i];
    for (fs::path dir = fs::path(watch.path).parent_path(); !dir.empty(); dir = dir.parent_path()) {
      if (auto outer = recursive_by_path.find(dir.string()); outer != recursive_by_path.end()) {
        Error(watch_sites_[i].path_mark, "watches[" + std::to_string(i) + "].path",
              QuotePath(watch.path) + " is inside watches[" + std::to_string(outer->second) +
                  "] (" + QuotePath(outer->first) + ", recursive, at " +
                  Location(watch_sites_[outer->second].mark) +
                  "); its files would be verified twice");
        break;
      }
      if (dir == dir.root_path()) break;
    }
  }
}

void Loader::LoadDocument(const YAML::Node& root, Config* config) {
  ApplyDefaults("", config, nullptr);
  if (!root.IsNull() && !root.IsMap()) {
    Error(root.Mark(), "",
          "expected a map of sections (log, metrics, verify, watches), got " +
              std::string(NodeWord(root)));
    return;
  }
  std::map<std::string, YAML::Mark> seen;
  if (root.IsMap()) WalkMap(root, "", "", config, nullptr, &seen);
  if (!seen.count(std::string(kWatchesKey))) {
    Error(YAML::Mark::null_mark(), "", "missing required key 'watches' (the directories to watch)");
  }
  CheckWatches(config);
}

// Finds where a second YAML document starts. Not YAML::LoadAll(): in yaml-cpp 0.7 it never
// returns on some malformed input (",a"), allocating until killed; this loop is bounded.
class DocumentFinder : public YAML::EventHandler {
 public:
  int documents = 0;
  YAML::Mark second = YAML::Mark::null_mark();

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents == 2) second = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

bool LoadWithBase(std::string_view yaml, const std::string& source_name, const fs::path& base_dir,
                  Config* out, std::string* err, const ConfigCheck& check = {}) {
  static const std::string kTableProblems = TableProblems();
  if (!kTableProblems.empty()) {
    *err = "ckptwatch's key table is broken (a bug):\n" + kTableProblems;
    return false;
  }
  Loader loader(source_name, base_dir);
  Config config;
  config.source = source_name;
  if (yaml.size() > kMaxConfigBytes) {
    *err =
        source_name + ": larger than " + FormatSize(kMaxConfigBytes) + "; is this the config file?";
    return false;
  }
  try {
    const std::string text(yaml);
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentFinder finder;
    for (int i = 0; i < 2 && parser.HandleNextDocument(finder); ++i) {
    }
    if (finder.documents > 1) {
      loader.Error(finder.second, "", "only one YAML document is allowed");
    } else {
      loader.LoadDocument(YAML::Load(text), &config);
    }
  } catch (const YAML::ParserException& e) {
    loader.Error(e.mark, "", "YAML syntax: " + e.msg);
  } catch (const YAML::Exception& e) {
    loader.Error(e.mark, "", std::string("YAML: ") + e.what());
  }
  // The checks beyond the file run on what did load, so one pass reports every problem; a key
  // already in error is not checked again.
  if (check)
    for (const ConfigProblem& p : check(config))
      if (!loader.HasError(p.key)) loader.Error(loader.MarkOf(p.key), p.key, p.message);
  if (!loader.ok()) {
    *err = loader.Report();
    return false;
  }
  *out = std::move(config);
  return true;
}

}  // namespace

bool LoadConfigString(std::string_view yaml, const std::string& source_name, Config* out,
                      std::string* err) {
  std::error_code ec;
  fs::path base = fs::current_path(ec);
  if (ec) {
    *err = source_name + ": cannot resolve relative paths: working directory: " + ec.message();
    return false;
  }
  if (source_name.find('/') != std::string::npos) {
    base = (base / source_name).lexically_normal().parent_path();
  }
  return LoadWithBase(yaml, source_name, base, out, err);
}

bool LoadConfigFile(const std::string& path, Config* out, std::string* err,
                    const ConfigCheck& check) {
  // Not ifstream: its errors lose errno, and the message must say why the file cannot be read.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    *err = "cannot read config " + path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  std::string text;
  std::string problem;
  if (fstat(fd, &st) != 0) {
    problem = std::strerror(errno);
  } else if (S_ISDIR(st.st_mode)) {
    problem = std::strerror(EISDIR);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "not a regular file";
  } else {
    char buffer[65536];
    for (;;) {
      const ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        problem = std::strerror(errno);
        break;
      }
      if (n == 0) break;
      text.append(buffer, static_cast<size_t>(n));
      if (text.size() > kMaxConfigBytes) break;  // LoadWithBase reports it.
    }
  }
  close(fd);
  if (!problem.empty()) {
    *err = "cannot read config " + path + ": " + problem;
    return false;
  }
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  if (ec) {
    *err = path + ": cannot resolve relative paths: " + ec.message();
    return false;
  }
  return LoadWithBase(text, path, absolute.lexically_normal().parent_path(), out, err, check);
}

Config DefaultConfig() {
  static constexpr char kDefaultYaml[] =
      "watches:\n"
      "  - path: checkpoints\n"
      // Someone trying ckptwatch out wants the verdict line at once; inotify's
      // close-write already says the save finished.
      "    settle: 200ms\n";
  Config config;
  std::string err;
  if (!LoadConfigString(kDefaultYaml, "<built-in default>", &config, &err)) {
    // Only an unusable working directory gets here (the text is tested); there is no config
    // to fall back to.
    std::fprintf(stderr, "ckptwatch: built-in default config: %s\n", err.c_str());
    std::abort();
  }
  return config;
}

}  // namespace ckptwatch
