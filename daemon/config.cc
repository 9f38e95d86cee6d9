#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <type_traits>
#include <variant>

namespace ckptwatch {
namespace {

using Millis = std::chrono::milliseconds;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Enum spellings. Each array is indexed by the enum's value, which is how the table parses them.

constexpr std::array<std::string_view, 2> kLogFormatNames{"text", "json"};
constexpr std::array<std::string_view, 5> kLogLevelNames{"trace", "debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 3> kBackendNames{"auto", "inotify", "poll"};

std::span<const std::string_view> ChoicesOf(const LogFormat*) { return kLogFormatNames; }
std::span<const std::string_view> ChoicesOf(const LogLevel*) { return kLogLevelNames; }
std::span<const std::string_view> ChoicesOf(const WatchBackend*) { return kBackendNames; }
std::span<const std::string_view> ChoicesOf(const Level*) {
  // Built from verdict.h so the two spellings cannot drift apart.
  static const std::array<std::string_view, 3> names{
      LevelName(Level::kHeader), LevelName(Level::kStructure), LevelName(Level::kFull)};
  return names;
}

// ---------------------------------------------------------------------------------------------
// The key table.

// Where a key's value lives. Captureless lambdas (see the macros) so the table stays data.
template <class T>
using Field = T* (*)(Config*, WatchConfig*);
using FieldRef = std::variant<Field<std::string>, Field<bool>, Field<int>, Field<Millis>,
                              Field<std::optional<Millis>>, Field<std::uint64_t>,
                              Field<std::optional<SpaceThreshold>>, Field<std::vector<std::string>>,
                              Field<std::optional<Principal>>, Field<std::vector<Principal>>,
                              Field<LogFormat>, Field<LogLevel>, Field<Level>, Field<WatchBackend>>;

#define CONFIG_FIELD(member) +[](Config* c, WatchConfig*) { return &c->member; }
#define WATCH_FIELD(member) +[](Config*, WatchConfig* w) { return &w->member; }

// What a value means, beyond its C++ type: the strings differ in validation.
enum class Type {
  kString,
  kName,
  kPath,
  kListen,
  kBool,
  kInt,
  kDuration,
  kSize,
  kFreeSpace,
  kEnum,
  kGlobs,
  kUser,
  kPrincipals,
};

enum class Presence {
  kDefault,   // `default_text` (YAML) applies when the key is absent.
  kOptional,  // Absent means unset.
  kRequired,  // Must be given (within its section, if the section is given at all).
  kDerived,   // Computed from other keys when absent; `default_text` says how (docs only).
};

struct Key {
  std::string_view name;  // Dotted; "watches[]." for keys of each watch.
  Type type;
  Presence presence;
  std::string_view default_text;
  std::string_view min;  // Bounds in the key's own units ("100ms", "64MiB"); "" for none.
  std::string_view max;
  bool reloadable;
  FieldRef field;
  std::string_view meaning;
};

// One row per key, in the order of docs/config.md and of DescribeEffectiveConfig().
const Key kKeys[] = {
    {"log.file", Type::kPath, Presence::kOptional, "", "", "", true, CONFIG_FIELD(log.file),
     "Log file, appended to. Unset: stderr (the journal, under systemd). SIGUSR1 reopens it, "
     "for logrotate."},
    {"log.format", Type::kEnum, Presence::kDefault, "text", "", "", true, CONFIG_FIELD(log.format),
     "`text` for people, `json` (one object per line) for machines."},
    {"log.level", Type::kEnum, Presence::kDefault, "info", "", "", true, CONFIG_FIELD(log.level),
     "Least severe level logged."},
    {"log.summary_every", Type::kDuration, Presence::kDefault, "10m", "1m", "1d", true,
     CONFIG_FIELD(log.summary_every), "Period of the one-line summary of every watch's state."},
    {"metrics.listen", Type::kListen, Presence::kDefault, "127.0.0.1:19842", "", "", false,
     CONFIG_FIELD(metrics.listen),
     "Address of the Prometheus `/metrics` endpoint: `host:port`, IPv6 as `[addr]:port`; "
     "`0.0.0.0:19842` listens on every interface."},
    {"metrics.basic_auth.username", Type::kString, Presence::kRequired, "", "", "", false,
     CONFIG_FIELD(metrics.basic_auth_username),
     "With `basic_auth` given: the user name `/metrics` requires (HTTP basic auth)."},
    {"metrics.basic_auth.password_file", Type::kPath, Presence::kRequired, "", "", "", false,
     CONFIG_FIELD(metrics.basic_auth_password_file),
     "With `basic_auth` given: file holding the password, so the config itself can be "
     "world-readable."},
    {"verify.level", Type::kEnum, Presence::kDefault, "structure", "", "", true,
     CONFIG_FIELD(verify.level),
     "How deep to verify: `header` (signature and superblock), `structure` (plus every "
     "object's metadata), `full` (plus every byte of data, NaN/Inf scan)."},
    {"verify.full_max_bytes", Type::kSize, Presence::kDefault, "8GiB", "0", "1PiB", true,
     CONFIG_FIELD(verify.full_max_bytes),
     "Files larger than this are verified at `structure` even where `full` is asked."},
    {"verify.max_parallel", Type::kInt, Presence::kDefault, "2", "1", "64", true,
     CONFIG_FIELD(verify.max_parallel), "Verifier processes running at once."},
    {"verify.timeout", Type::kDuration, Presence::kDefault, "5m", "1s", "1d", true,
     CONFIG_FIELD(verify.timeout),
     "A verifier running longer is killed and the file's verdict is `timeout`."},
    {"verify.memory_limit", Type::kSize, Presence::kDefault, "2GiB", "64MiB", "1TiB", true,
     CONFIG_FIELD(verify.memory_limit), "Memory limit of each verifier process."},
    {"verify.queue_limit", Type::kInt, Presence::kDefault, "10000", "1", "1000000", true,
     CONFIG_FIELD(verify.queue_limit),
     "Most files waiting for a verifier; past it a new file is left for a later rescan of its "
     "watch (logged as `queue_full`)."},
    {"watches[].name", Type::kName, Presence::kDerived, "from `path`", "", "", true,
     WATCH_FIELD(name),
     "Unique name, the `watch` label of metrics: 1-64 of `A-Z a-z 0-9 _ . -`. Derived from the "
     "last path component (the last two when the last is generic, like `checkpoints`)."},
    {"watches[].path", Type::kPath, Presence::kRequired, "", "", "", true, WATCH_FIELD(path),
     "Directory to watch. Relative paths resolve against the config file's directory. It need "
     "not exist: a missing directory is the watch's state `missing`, not a config error."},
    {"watches[].recursive", Type::kBool, Presence::kDefault, "false", "", "", true,
     WATCH_FIELD(recursive), "Watch subdirectories too."},
    {"watches[].patterns", Type::kGlobs, Presence::kDefault, R"(["*.h5", "*.hdf5", "*.keras"])", "",
     "", true, WATCH_FIELD(patterns),
     "File-name globs (fnmatch) of the files to verify; `.weights.h5` matches `*.h5`."},
    {"watches[].backend", Type::kEnum, Presence::kDefault, "auto", "", "", true,
     WATCH_FIELD(backend),
     "How changes are noticed: `inotify`, `poll` (rescans; for NFS and other network "
     "filesystems), or `auto` (inotify, falling back to poll)."},
    {"watches[].poll_interval", Type::kDuration, Presence::kDefault, "10s", "100ms", "1d", true,
     WATCH_FIELD(poll_interval), "Rescan period when polling."},
    {"watches[].settle", Type::kDuration, Presence::kDefault, "1s", "0s", "1h", true,
     WATCH_FIELD(settle), "Quiet time after a file's last change before it is verified."},
    {"watches[].level", Type::kEnum, Presence::kDerived, "`verify.level`", "", "", true,
     WATCH_FIELD(level), "Verification level for this watch."},
    {"watches[].expect_every", Type::kDuration, Presence::kOptional, "", "1s", "30d", true,
     WATCH_FIELD(expect_every),
     "The watch is `stale` when no good checkpoint appeared for this long."},
    {"watches[].min_free", Type::kFreeSpace, Presence::kOptional, "", "", "", true,
     WATCH_FIELD(min_free),
     "Free space the filesystem must keep, as a size (`10GiB`) or a percentage (`5%`)."},
    {"watches[].writer", Type::kUser, Presence::kOptional, "", "", "", true, WATCH_FIELD(writer),
     "User (name or uid) that must be able to write new checkpoints here."},
    {"watches[].readers", Type::kPrincipals, Presence::kOptional, "", "", "", true,
     WATCH_FIELD(readers),
     "Users and groups that must be able to read the checkpoints: a name is a user if one "
     "exists, else a group; `user:NAME` or `group:NAME` says which; numbers are ids."},
};

#undef CONFIG_FIELD
#undef WATCH_FIELD

constexpr std::string_view kWatchPrefix = "watches[].";
constexpr std::string_view kWatchesKey = "watches";
constexpr size_t kMaxWatches = 4096;
constexpr size_t kMaxErrors = 20;
constexpr size_t kMaxConfigBytes = 1 << 20;

const Key* FindKey(std::string_view name) {
  for (const Key& key : kKeys) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The distinct next components of the keys below `prefix`: "log." gives file, format, ...;
// "" gives log, metrics, verify, watches.
std::vector<std::string_view> ChildrenOf(std::string_view prefix) {
  std::vector<std::string_view> children;
  for (const Key& key : kKeys) {
    if (!StartsWith(key.name, prefix)) continue;
    std::string_view rest = key.name.substr(prefix.size());
    rest = rest.substr(0, std::min(rest.find('.'), rest.find('[')));
    if (std::find(children.begin(), children.end(), rest) == children.end()) {
      children.push_back(rest);
    }
  }
  return children;
}

bool IsSection(std::string_view name) {
  for (const Key& key : kKeys) {
    if (StartsWith(key.name, name) && key.name.size() > name.size() &&
        key.name[name.size()] == '.') {
      return true;
    }
  }
  return false;
}

// Optimal string alignment distance (adjacent swaps count 1), for did-you-mean.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The closest of `candidates` within distance 2 of `word`, if any.
std::optional<std::string_view> Closest(std::string_view word,
                                        std::span<const std::string_view> candidates) {
  constexpr size_t kMaxDistance = 2;
  if (word.size() > 64) return std::nullopt;  // Nothing that long is a typo of a short key.
  std::optional<std::string_view> best;
  size_t best_distance = kMaxDistance + 1;
  for (std::string_view c : candidates) {
    const size_t distance = EditDistance(word, c);
    if (distance < best_distance) {
      best = c;
      best_distance = distance;
    }
  }
  return best;
}

std::string JoinOr(std::span<const std::string_view> words, std::string_view last_sep) {
  std::string text;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) text += i + 1 == words.size() ? last_sep : ", ";
    text += words[i];
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// Loading.

// Where a value came from, for messages: "watches[0].settle" at a YAML mark.
struct Site {
  const Key* key;
  std::string display;  // The key with list indices filled in.
  YAML::Mark mark;
};

class Loader {
 public:
  Loader(std::string source, fs::path base_dir)
      : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

  void Error(const YAML::Mark& mark, std::string_view key, std::string_view message) {
    std::string line = Location(mark) + ": ";
    if (!key.empty()) line += std::string(key) + ": ";
    errors_.push_back({mark, line + std::string(message)});
  }
  std::string Location(const YAML::Mark& mark) const {
    if (mark.is_null() || mark.line < 0) return source_;
    return source_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  bool ok() const { return errors_.empty(); }
  size_t error_count() const { return errors_.size(); }
  // The errors in file order (those without a position first), one per line.
  std::string Report() {
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
  const fs::path& base_dir() const { return base_dir_; }

  void LoadDocument(const YAML::Node& root, Config* config);

 private:
  // Per watch, what the cross-checks after the walk need.
  struct WatchSite {
    YAML::Mark mark, name_mark, path_mark;
    bool name_given = false, level_given = false;
  };

  void ApplyDefaults(std::string_view prefix, Config* config, WatchConfig* watch);
  void WalkMap(const YAML::Node& map, std::string_view prefix, const std::string& display,
               Config* config, WatchConfig* watch, std::map<std::string, YAML::Mark>* seen);
  void WalkWatches(const YAML::Node& key_node, const YAML::Node& list, Config* config);
  void UnknownKey(const YAML::Node& key_node, std::string_view prefix, const std::string& display,
                  const std::string& name);
  void CheckWatches(Config* config);

  std::string source_;
  fs::path base_dir_;
  std::vector<std::pair<YAML::Mark, std::string>> errors_;
  std::vector<WatchSite> watch_sites_;
};

std::string_view TypeWord(Type type) {
  switch (type) {
    case Type::kString:
    case Type::kName:
    case Type::kPath:
    case Type::kListen:
    case Type::kUser:
      return "a string";
    case Type::kBool:
      return "true or false";
    case Type::kInt:
      return "an integer";
    case Type::kDuration:
      return "a duration";
    case Type::kSize:
      return "a size";
    case Type::kFreeSpace:
      return "a size or a percentage";
    case Type::kEnum:
      return "one of its values";
    case Type::kGlobs:
    case Type::kPrincipals:
      return "a list";
  }
  return "a value";
}

std::string_view NodeWord(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "a scalar";
  }
}

// The scalar text of `node` for `site`, or nullopt after reporting why there is none.
std::optional<std::string> ScalarText(Loader& loader, const Site& site, const YAML::Node& node) {
  if (!node.IsScalar()) {
    loader.Error(site.mark, site.display,
                 "expected " + std::string(TypeWord(site.key->type)) + ", got " +
                     std::string(NodeWord(node)));
    return std::nullopt;
  }
  const std::string& text = node.Scalar();
  if (text.find('\0') != std::string::npos) {
    loader.Error(site.mark, site.display, QuoteForMessage(text) + " contains a NUL byte");
    return std::nullopt;
  }
  return text;
}

// Checks `value` against the key's bounds, parsed with `parse` from the table's text.
template <class T, class Parse, class Format>
bool InBounds(Loader& loader, const Site& site, const std::string& text, T value, Parse parse,
              Format format) {
  T min{}, max{};
  std::string ignored;
  const bool has_min = !site.key->min.empty() && parse(site.key->min, &min, &ignored);
  const bool has_max = !site.key->max.empty() && parse(site.key->max, &max, &ignored);
  if ((has_min && value < min) || (has_max && value > max)) {
    loader.Error(
        site.mark, site.display,
        QuoteForMessage(text) + " is out of range: must be " + format(min) + " to " + format(max));
    return false;
  }
  return true;
}

bool ParseInt(std::string_view text, std::int64_t* out, std::string* err) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    *err =
        ec == std::errc::result_out_of_range ? " is out of range" : " is not an integer (e.g. 4)";
    *err = QuoteForMessage(text) + *err;
    return false;
  }
  *out = value;
  return true;
}

bool ValidName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

// "" when `text` is a valid listen address, else what is wrong with it.
std::string ListenProblem(std::string_view text) {
  const std::string example = "(e.g. 127.0.0.1:" + std::to_string(kDefaultMetricsPort) +
                              ", [::1]:" + std::to_string(kDefaultMetricsPort) + ")";
  std::string_view host, port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) return "is not [IPv6 address]:port " + example;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr addr{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &addr) != 1) {
      return "has no valid IPv6 address in brackets " + example;
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return "is not host:port " + example;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return "looks like an IPv6 address: put it in brackets " + example;
    }
    if (host.empty()) return "has no host; 0.0.0.0 means every interface " + example;
    const bool numeric = std::all_of(host.begin(), host.end(),
                                     [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    if (numeric) {
      in_addr addr{};
      if (inet_pton(AF_INET, std::string(host).c_str(), &addr) != 1) {
        return "has an invalid IPv4 address " + example;
      }
    } else {
      // RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
      bool valid = host.size() <= 253;
      size_t start = 0;
      while (valid && start <= host.size()) {
        size_t end = host.find('.', start);
        if (end == std::string_view::npos) end = host.size();
        const std::string_view label = host.substr(start, end - start);
        valid = !label.empty() && label.size() <= 63 && label.front() != '-' &&
                label.back() != '-' && std::all_of(label.begin(), label.end(), [](char c) {
                  return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
                });
        start = end + 1;
      }
      if (!valid) return "has an invalid host name " + example;
    }
  }
  int port_number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || port_number < 1 ||
      port_number > 65535) {
    return "has an invalid port: must be 1 to 65535 " + example;
  }
  return "";
}

// The uid or gid of `name` through getpwnam_r or getgrnam_r; nullopt when absent, with the
// call's error (0 for plain absence) in *error.
template <class Entry>
std::optional<std::uint32_t> LookUpId(int (*lookup)(const char*, Entry*, char*, size_t, Entry**),
                                      const std::string& name, int* error) {
  std::vector<char> buffer(16384);
  Entry entry{};
  Entry* result = nullptr;
  int rc;
  while ((rc = lookup(name.c_str(), &entry, buffer.data(), buffer.size(), &result)) == ERANGE &&
         buffer.size() < (1u << 20)) {
    buffer.resize(buffer.size() * 2);
  }
  if (rc != 0) *error = rc;
  if (result == nullptr) return std::nullopt;
  if constexpr (std::is_same_v<Entry, passwd>) {
    return entry.pw_uid;
  } else {
    return entry.gr_gid;
  }
}

// Resolves "name", "uid", "user:name" or "group:name" (and numbers after the prefixes).
std::optional<Principal> ResolvePrincipal(std::string_view spec, bool users_only,
                                          std::string* why) {
  enum { kEither, kUser, kGroup } want = users_only ? kUser : kEither;
  std::string_view name = spec;
  if (StartsWith(name, "user:")) {
    want = kUser;
    name.remove_prefix(5);
  } else if (StartsWith(name, "group:")) {
    if (users_only) {
      *why = QuoteForMessage(spec) + " is a group; this key takes a user (name or uid)";
      return std::nullopt;
    }
    want = kGroup;
    name.remove_prefix(6);
  }
  if (name.empty() || name.size() > 256) {
    *why = QuoteForMessage(spec) + " is not a user or group name";
    return std::nullopt;
  }
  Principal principal;
  principal.name = std::string(name);
  principal.kind = want == kGroup ? Principal::Kind::kGroup : Principal::Kind::kUser;
  if (std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Ids need not exist in this host's databases: containers and NFS map them elsewhere.
    std::uint32_t id = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (ec != std::errc() || id == static_cast<std::uint32_t>(-1)) {
      *why = QuoteForMessage(spec) + " is not a valid id";
      return std::nullopt;
    }
    principal.id = id;
    return principal;
  }
  int lookup_error = 0;
  if (want != kGroup) {
    if (std::optional<std::uint32_t> uid = LookUpId(getpwnam_r, principal.name, &lookup_error)) {
      principal.id = *uid;
      principal.kind = Principal::Kind::kUser;
      return principal;
    }
  }
  if (want != kUser) {
    if (std::optional<std::uint32_t> gid = LookUpId(getgrnam_r, principal.name, &lookup_error)) {
      principal.id = *gid;
      principal.kind = Principal::Kind::kGroup;
      return principal;
    }
  }
  *why = std::string("no ") +
         (want == kUser    ? "user"
          : want == kGroup ? "group"
                           : "user or group") +
         " " + QuoteForMessage(name) + " on this host";
  // ENOENT and friends just mean "not found"; other errors (NSS down) are worth showing.
  if (lookup_error != 0 && lookup_error != ENOENT && lookup_error != ESRCH &&
      lookup_error != EBADF && lookup_error != EPERM) {
    *why += std::string(" (lookup failed: ") + std::strerror(lookup_error) + ")";
  }
  return std::nullopt;
}

// The config text of `p`. Groups keep their prefix: a bare name reads back as a user when a
// user of that name exists.
std::string FormatPrincipal(const Principal& p) {
  return p.kind == Principal::Kind::kGroup ? "group:" + p.name : p.name;
}

// Absolute, lexically normal, no trailing slash; nullopt after reporting a problem.
std::optional<std::string> ResolvePath(Loader& loader, const Site& site, const std::string& text) {
  if (text.empty()) {
    loader.Error(site.mark, site.display, "needs a path");
    return std::nullopt;
  }
  if (text[0] == '~') {
    loader.Error(site.mark, site.display,
                 QuoteForMessage(text) + ": '~' is not expanded; write the absolute path");
    return std::nullopt;
  }
  if (text.size() > 4096) {
    loader.Error(site.mark, site.display, QuoteForMessage(text) + " is longer than PATH_MAX");
    return std::nullopt;
  }
  fs::path path = (loader.base_dir() / text).lexically_normal();
  std::string resolved = path.string();
  while (resolved.size() > 1 && resolved.back() == '/') resolved.pop_back();
  return resolved;
}

// Parses `node` into *out. One overload per C++ type the table stores.
void Parse(Loader& loader, const Site& site, const YAML::Node& node, std::string* out) {
  const std::optional<std::string> text = ScalarText(loader, site, node);
  if (!text) return;
  switch (site.key->type) {
    case Type::kPath:
      if (std::optional<std::string> path = ResolvePath(loader, site, *text)) *out = *path;
      return;
    case Type::kListen:
      if (std::string problem = ListenProblem(*text); !problem.empty()) {
        loader.Error(site.mark, site.display, QuoteForMessage(*text) + " " + problem);
        return;
      }
      break;
    case Type::kName:
      if (!ValidName(*text)) {
        loader.Error(site.mark, site.display,
                     QuoteForMessage(*text) + " is not a name: use 1 to 64 of A-Z a-z 0-9 _ . -");
        return;
      }
      break;
    default:
      if (text->empty() || text->size() > 256) {
        loader.Error(site.mark, site.display, "needs 1 to 256 characters");
        return;
      }
      break;
  }
  *out = *text;
}

void Parse(Loader& loader, const Site& site, const YAML::Node& node, bool* out) {
  const std::optional<std::string> text = ScalarText(loader, site, node);
  if (!text) return;
  // YAML 1.2 booleans only: "yes"/"no"/"on" are the classic source of surprises.
  if (*text == "true" || *text == "True" || *text == "TRUE") {
    *out = true;
  } else if (*text == "false" || *text == "False" || *text == "FALSE") {
    *out = false;
  } else {
    loader.Error(site.mark, site.display, QuoteForMessage(*text) + " is not true or false");
  }
}

void Parse(Loader& loader, const Site& site, const YAML::Node& node, int* out) {
  const std::optional<std::string> text = ScalarText(loader, site, node);
  if (!text) return;
  std::int64_t value = 0;
  std::string err;
  if (!ParseInt(*text, &value, &err)) {
    loader.Error(site.mark, site.display, err);
    return;
  }
  if (InBounds(loader, site, *text, value, ParseInt,
               [](std::int64_t v) { return std::to_string(v); })) {
    *out = static_cast<int>(value);
  }
}

void Parse(Loader& loader, const Site& site, const YAML::Node& node, Millis* out) {
  const std::optional<std::string> text = ScalarText(loader, site, node);
  if (!text) return;
  Millis value{};
  std::string err;
  if (!ParseDuration(*text, &value, &err)) {
    loader.Error(site.mark, site.display, err);
    return;
  }
  if (InBounds(loader, site, *text, value, ParseDuration, FormatDuration)) *out = value;
}

void Parse(Loader& loader, const Site& site, const YAML::Node& node, std::uint64_t* out) {
  const std::optional<std::string> text = ScalarText(loader, site, node);
  if (!text) return;
  std::uint64_t value = 0;
  std::string err;
  if (!ParseSize(*text, &value, &err)) {
    loader.Error(site.mark, site.display, err);
    return;
  }
  if (InBounds(loader, site, *text, value, ParseSize, FormatSize)) *out = value;
}

void Parse(Loader& loader, const Site& site, const YAML::Node& node,
           std::optional<SpaceThreshold>* out) {
  const std::optional<std::string> text = ScalarText(loader, site, node);
  if (!text) return;
  SpaceThreshold value;
  std::string err;
  if (!ParseSpaceThreshold(*text, &value, &err)) {
    loader.Error(site.mark, site.display, err);
    return;
  }
  *out = value;
}

void Parse(Loader& loader, const Site& site, const YAML::Node& node, std::optional<Millis>* out) {
  Millis value{};
  const size_t errors_before = loader.error_count();
  Parse(loader, site, node, &value);
  if (loader.error_count() == errors_before) *out = value;
}

void Parse(Loader& loader, const Site& site, const YAML::Node& node,
           std::optional<Principal>* out) {
  const std::optional<std::string> text = ScalarText(loader, site, node);
  if (!text) return;
  std::string why;
  if (std::optional<Principal> p = ResolvePrincipal(*text, /*users_only=*/true, &why)) {
    *out = std::move(p);
  } else {
    loader.Error(site.mark, site.display, why);
  }
}

template <class E>
requires std::is_enum_v<E>
void Parse(Loader& loader, const Site& site, const YAML::Node& node, E* out) {
  const std::optional<std::string> text = ScalarText(loader, site, node);
  if (!text) return;
  const std::span<const std::string_view> choices = ChoicesOf(out);
  for (size_t i = 0; i < choices.size(); ++i) {
    if (choices[i] == *text) {
      *out = static_cast<E>(i);
      return;
    }
  }
  std::string message = QuoteForMessage(*text) + " is not one of " + JoinOr(choices, ", ");
  if (std::optional<std::string_view> close = Closest(*text, choices)) {
    message += "; did you mean '" + std::string(*close) + "'?";
  }
  loader.Error(site.mark, site.display, message);
}

// A list of scalars, each checked by `item`; an empty or absent list is left to the caller.
template <class T, class Item>
void ParseList(Loader& loader, const Site& site, const YAML::Node& node, std::vector<T>* out,
               Item item) {
  if (!node.IsSequence()) {
    loader.Error(site.mark, site.display, "expected a list, got " + std::string(NodeWord(node)));
    return;
  }
  std::vector<T> values;
  bool ok = true;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node element = node[i];
    Site element_site{site.key, site.display + "[" + std::to_string(i) + "]", element.Mark()};
    if (element_site.mark.is_null()) element_site.mark = site.mark;
    if (!element.IsScalar()) {
      loader.Error(element_site.mark, element_site.display,
                   "expected a string, got " + std::string(NodeWord(element)));
      ok = false;
      continue;
    }
    std::optional<std::string> text = ScalarText(loader, element_site, element);
    std::optional<T> value = text ? item(element_site, *text) : std::nullopt;
    if (value) {
      values.push_back(std::move(*value));
    } else {
      ok = false;
    }
  }
  if (ok) *out = std::move(values);
}

void Parse(Loader& loader, const Site& site, const YAML::Node& node,
           std::vector<std::string>* out) {
  ParseList(loader, site, node, out,
            [&](const Site& s, const std::string& glob) -> std::optional<std::string> {
              if (glob.empty() || glob.size() > 255 || glob.find('/') != std::string::npos) {
                loader.Error(s.mark, s.display,
                             QuoteForMessage(glob) +
                                 " is not a file-name glob (1 to 255 characters, no '/')");
                return std::nullopt;
              }
              return glob;
            });
  if (out->empty() && node.IsSequence() && node.size() == 0) {
    loader.Error(site.mark, site.display, "needs at least one pattern");
  }
}

void Parse(Loader& loader, const Site& site, const YAML::Node& node, std::vector<Principal>* out) {
  ParseList(loader, site, node, out,
            [&](const Site& s, const std::string& spec) -> std::optional<Principal> {
              std::string why;
              std::optional<Principal> p = ResolvePrincipal(spec, /*users_only=*/false, &why);
              if (!p) loader.Error(s.mark, s.display, why);
              return p;
            });
}

// Sets `key` from `node` (null: unset an optional key).
void Assign(Loader& loader, const Site& site, const YAML::Node& node, Config* config,
            WatchConfig* watch) {
  std::visit(
      [&](auto field) {
        auto* out = field(config, watch);
        if (node.IsNull()) {
          if (site.key->presence == Presence::kOptional) {
            *out = {};
          } else {
            loader.Error(site.mark, site.display,
                         "needs a value (" + std::string(TypeWord(site.key->type)) + ")");
          }
          return;
        }
        Parse(loader, site, node, out);
      },
      site.key->field);
}

void Loader::ApplyDefaults(std::string_view prefix, Config* config, WatchConfig* watch) {
  for (const Key& key : kKeys) {
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
    for (const Key& key : kKeys) {
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
      for (const Key& key : kKeys) {
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
    site.name_given = seen.count("name") > 0;
    site.level_given = seen.count("level") > 0;
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

// Mistakes in kKeys itself, one per line; "" when there are none. Defaults need no check here:
// every load applies them through the same parsers and bounds as the file's values.
std::string TableProblems() {
  std::string problems;
  for (const Key& key : kKeys) {
    const bool type_fits = std::visit(
        [&](auto field) {
          using T = std::remove_pointer_t<decltype(field(nullptr, nullptr))>;
          if constexpr (std::is_same_v<T, std::string>) {
            return key.type == Type::kString || key.type == Type::kName ||
                   key.type == Type::kPath || key.type == Type::kListen;
          } else if constexpr (std::is_enum_v<T>) {
            return key.type == Type::kEnum;
          } else {
            constexpr std::pair<bool, Type> kTypes[] = {
                {std::is_same_v<T, bool>, Type::kBool},
                {std::is_same_v<T, int>, Type::kInt},
                {std::is_same_v<T, Millis> || std::is_same_v<T, std::optional<Millis>>,
                 Type::kDuration},
                {std::is_same_v<T, std::uint64_t>, Type::kSize},
                {std::is_same_v<T, std::optional<SpaceThreshold>>, Type::kFreeSpace},
                {std::is_same_v<T, std::vector<std::string>>, Type::kGlobs},
                {std::is_same_v<T, std::optional<Principal>>, Type::kUser},
                {std::is_same_v<T, std::vector<Principal>>, Type::kPrincipals},
            };
            for (const auto& [matches, type] : kTypes) {
              if (matches) return key.type == type;
            }
            return false;
          }
        },
        key.field);
    if (!type_fits) problems += std::string(key.name) + ": type does not fit its field\n";
    for (std::string_view bound : {key.min, key.max}) {
      if (bound.empty()) continue;
      Millis ms{};
      std::uint64_t bytes = 0;
      std::int64_t n = 0;
      std::string err;
      const bool parses = key.type == Type::kDuration ? ParseDuration(bound, &ms, &err)
                          : key.type == Type::kSize   ? ParseSize(bound, &bytes, &err)
                          : key.type == Type::kInt    ? ParseInt(bound, &n, &err)
                                                      : false;
      if (!parses) problems += std::string(key.name) + ": bad bound '" + std::string(bound) + "'\n";
    }
    if ((key.presence == Presence::kDefault) == key.default_text.empty() &&
        key.presence != Presence::kDerived) {
      problems += std::string(key.name) + ": default text does not fit its presence\n";
    }
  }
  return problems;
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
                  Config* out, std::string* err) {
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
  if (!loader.ok()) {
    *err = loader.Report();
    return false;
  }
  *out = std::move(config);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Output: the effective config as YAML, and the reference table.

std::string DoubleQuoted(std::string_view text) {
  std::string quoted = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += c;
    } else if (u < 0x20 || u == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\x%02x", u);
      quoted += escape;
    } else {
      quoted += c;  // UTF-8 passes through: YAML's \xNN would mean a code point, not a byte.
    }
  }
  return quoted + "\"";
}

// `text` as a YAML scalar: plain when that reads back as the same string, else double-quoted.
std::string YamlScalar(std::string_view text) {
  static const std::set<std::string_view> kSpecial = {
      "true", "false", "True", "False", "TRUE", "FALSE", "null", "Null", "NULL",
      "~",    "yes",   "no",   "Yes",   "No",   "YES",   "NO",   "on",   "On",
      "ON",   "off",   "Off",  "OFF",   "y",    "Y",     "n",    "N"};
  const bool plain =
      !text.empty() && !kSpecial.count(text) &&
      (std::isalnum(static_cast<unsigned char>(text[0])) || text[0] == '/' || text[0] == '_') &&
      std::all_of(text.begin(), text.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '.' ||
               c == '-' || c == '@' || c == '+';
      });
  return plain ? std::string(text) : DoubleQuoted(text);
}

std::string FlowList(const std::vector<std::string>& items) {
  std::string text = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += ", ";
    text += DoubleQuoted(items[i]);  // Globs like *.h5 need quotes; quote all alike.
  }
  return text + "]";
}

// The YAML text of a key's value; nullopt when an optional key is unset.
std::optional<std::string> FormatValue(const Key&, const std::string& v) {
  if (v.empty()) return std::nullopt;
  return YamlScalar(v);
}
std::optional<std::string> FormatValue(const Key&, bool v) { return v ? "true" : "false"; }
std::optional<std::string> FormatValue(const Key&, int v) { return std::to_string(v); }
std::optional<std::string> FormatValue(const Key&, Millis v) { return FormatDuration(v); }
std::optional<std::string> FormatValue(const Key&, std::uint64_t v) { return FormatSize(v); }
std::optional<std::string> FormatValue(const Key&, const std::optional<Millis>& v) {
  if (!v) return std::nullopt;
  return FormatDuration(*v);
}
std::optional<std::string> FormatValue(const Key&, const std::optional<SpaceThreshold>& v) {
  if (!v) return std::nullopt;
  return YamlScalar(FormatSpaceThreshold(*v));
}
std::optional<std::string> FormatValue(const Key&, const std::vector<std::string>& v) {
  return FlowList(v);
}
std::optional<std::string> FormatValue(const Key&, const std::optional<Principal>& v) {
  if (!v) return std::nullopt;
  return YamlScalar(FormatPrincipal(*v));
}
std::optional<std::string> FormatValue(const Key&, const std::vector<Principal>& v) {
  if (v.empty()) return std::nullopt;
  std::string text = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) text += ", ";
    text += YamlScalar(FormatPrincipal(v[i]));
  }
  return text + "]";
}
template <class E>
requires std::is_enum_v<E> std::optional<std::string> FormatValue(const Key&, E v) {
  return std::string(ChoicesOf(&v)[static_cast<size_t>(v)]);
}

std::optional<std::string> FieldText(const Key& key, const Config& config,
                                     const WatchConfig* watch) {
  return std::visit(
      [&](auto field) {
        // The accessors take mutable pointers so one table serves loading too; nothing here
        // writes through them.
        return FormatValue(key,
                           *field(const_cast<Config*>(&config), const_cast<WatchConfig*>(watch)));
      },
      key.field);
}

// Appends `prefix`'s keys (and sections) to `out` at `indent`, in table order.
void DescribeSection(const Config& config, const WatchConfig* watch, std::string_view prefix,
                     const std::string& indent, std::string* out) {
  for (std::string_view child : ChildrenOf(prefix)) {
    const std::string name = std::string(prefix) + std::string(child);
    if (const Key* key = FindKey(name)) {
      if (std::optional<std::string> text = FieldText(*key, config, watch)) {
        *out += indent + std::string(child) + ": " + *text + "\n";
      } else {
        *out += indent + "# " + std::string(child) + ": (not set)\n";
      }
    } else if (name == kWatchesKey) {
      *out += indent + "watches:\n";
      for (const WatchConfig& w : config.watches) {
        std::string body;
        DescribeSection(config, &w, kWatchPrefix, indent + "    ", &body);
        body.replace(0, indent.size() + 4, indent + "  - ");
        *out += body;
      }
    } else {
      // A section whose keys are all unset (basic_auth) is unset itself.
      bool any_set = false;
      for (const Key& key : kKeys) {
        if (StartsWith(key.name, name + ".") && FieldText(key, config, watch)) any_set = true;
      }
      if (any_set) {
        *out += indent + std::string(child) + ":\n";
        DescribeSection(config, watch, name + ".", indent + "  ", out);
      } else {
        *out += indent + "# " + std::string(child) + ": (not set)\n";
      }
    }
  }
}

std::string MarkdownCell(std::string_view text) {
  std::string cell;
  for (const char c : text) {
    if (c == '|') cell += '\\';
    cell += c;
  }
  return cell;
}

std::string TypeDoc(const Key& key) {
  switch (key.type) {
    case Type::kString:
      return "string";
    case Type::kName:
      return "name";
    case Type::kPath:
      return "path";
    case Type::kListen:
      return "host:port";
    case Type::kBool:
      return "bool";
    case Type::kInt:
      return "integer";
    case Type::kDuration:
      return "duration";
    case Type::kSize:
      return "size";
    case Type::kFreeSpace:
      return "size or percent";
    case Type::kGlobs:
      return "list of globs";
    case Type::kUser:
      return "user";
    case Type::kPrincipals:
      return "list of users/groups";
    case Type::kEnum:
      break;
  }
  return std::visit(
      [](auto field) -> std::string {
        using T = std::remove_pointer_t<decltype(field(nullptr, nullptr))>;
        if constexpr (std::is_enum_v<T>) {
          std::string text;
          for (std::string_view choice : ChoicesOf(static_cast<T*>(nullptr))) {
            text += (text.empty() ? "`" : ", `") + std::string(choice) + "`";
          }
          return text;
        } else {
          return "enum";
        }
      },
      key.field);
}

std::string DefaultDoc(const Key& key) {
  switch (key.presence) {
    case Presence::kDefault:
      return "`" + std::string(key.default_text) + "`";
    case Presence::kOptional:
      return "unset";
    case Presence::kRequired:
      return "required";
    case Presence::kDerived:
      return std::string(key.default_text);
  }
  return "";
}

}  // namespace

std::string_view LogFormatName(LogFormat format) {
  return kLogFormatNames[static_cast<size_t>(format)];
}
std::string_view LogLevelName(LogLevel level) { return kLogLevelNames[static_cast<size_t>(level)]; }
std::string_view WatchBackendName(WatchBackend backend) {
  return kBackendNames[static_cast<size_t>(backend)];
}

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

bool LoadConfigFile(const std::string& path, Config* out, std::string* err) {
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
  return LoadWithBase(text, path, absolute.lexically_normal().parent_path(), out, err);
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

std::string DescribeEffectiveConfig(const Config& config) {
  std::string text = "# Effective configuration";
  if (!config.source.empty()) text += " loaded from " + config.source;
  text += " (every default filled in).\n";
  DescribeSection(config, nullptr, "", "", &text);
  return text;
}

std::string ConfigReferenceMarkdown() {
  std::string text =
      "| Key | Type | Default | Range | Reload | Meaning |\n"
      "| --- | --- | --- | --- | --- | --- |\n";
  for (const Key& key : kKeys) {
    const std::string range =
        key.min.empty() && key.max.empty()
            ? ""
            : "`" + std::string(key.min) + "` – `" + std::string(key.max) + "`";
    text += "| `" + std::string(key.name) + "` | " + MarkdownCell(TypeDoc(key)) + " | " +
            MarkdownCell(DefaultDoc(key)) + " | " + range + " | " +
            (key.reloadable ? "yes" : "restart") + " | " + MarkdownCell(key.meaning) + " |\n";
  }
  return text;
}

std::vector<std::string> ReloadBlockers(const Config& old, const Config& next) {
  std::vector<std::string> blockers;
  for (const Key& key : kKeys) {
    if (key.reloadable) continue;
    if (!StartsWith(key.name, kWatchPrefix)) {
      if (FieldText(key, old, nullptr) != FieldText(key, next, nullptr)) {
        blockers.emplace_back(key.name);
      }
      continue;
    }
    // Watches are matched by name: a renamed watch is a removed one plus a new one.
    for (const WatchConfig& before : old.watches) {
      for (const WatchConfig& after : next.watches) {
        if (before.name == after.name &&
            FieldText(key, old, &before) != FieldText(key, next, &after)) {
          blockers.push_back("watches[" + before.name + "]." +
                             std::string(key.name.substr(kWatchPrefix.size())));
        }
      }
    }
  }
  return blockers;
}

}  // namespace ckptwatch
