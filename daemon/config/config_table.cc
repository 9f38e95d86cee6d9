#include "config/config_table.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <set>
#include <type_traits>

namespace ckptwatch {
namespace config_table {
namespace {

// ---------------------------------------------------------------------------------------------
// Enum spellings. Each array is indexed by the enum's value, which is how the table parses them.

constexpr std::array<std::string_view, 2> kLogFormatNames{"text", "json"};
constexpr std::array<std::string_view, 5> kLogLevelNames{"trace", "debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 3> kBackendNames{"auto", "inotify", "poll"};

// ---------------------------------------------------------------------------------------------
// The key table.

#define CONFIG_FIELD(member) +[](Config* c, WatchConfig*) { return &c->member; }
#define WATCH_FIELD(member) +[](Config*, WatchConfig* w) { return &w->member; }

// Rows name the effect of a reload. Why each key has the one it has: what Daemon::Reload()
// applies in place (log, verify, most of a watch), what only a fresh inotify/poll watch picks up
// (what and how it watches), and what is set up once per process (the metrics socket).
constexpr ReloadEffect kLive = ReloadEffect::kLive;
constexpr ReloadEffect kRestartWatch = ReloadEffect::kRestartWatch;
constexpr ReloadEffect kRestartProcess = ReloadEffect::kRestartProcess;

// One row per key, in the order of docs/config.md and of DescribeEffectiveConfig().
const Key kKeys[] = {
    {"log.file", Type::kPath, Presence::kOptional, "", "", "", kLive, CONFIG_FIELD(log.file),
     "Log file, appended to. Unset: stderr (the journal, under systemd). SIGUSR1 reopens it, "
     "for logrotate."},
    {"log.format", Type::kEnum, Presence::kDefault, "text", "", "", kLive, CONFIG_FIELD(log.format),
     "`text` for people, `json` (one object per line) for machines."},
    {"log.level", Type::kEnum, Presence::kDefault, "info", "", "", kLive, CONFIG_FIELD(log.level),
     "Least severe level logged."},
    {"log.summary_every", Type::kDuration, Presence::kDefault, "10m", "1m", "1d", kLive,
     CONFIG_FIELD(log.summary_every), "Period of the one-line summary of every watch's state."},
    {"log.repeat_every", Type::kDuration, Presence::kDefault, "10m", "0s", "1d", kLive,
     CONFIG_FIELD(log.repeat_every),
     "The same file failing the same way again (an in-place rewrite each epoch) is logged at "
     "most once per this interval, as `again, ×N since HH:MM`; metrics count every failure. "
     "`0s` logs every one."},
    {"metrics.listen", Type::kListen, Presence::kDefault, "127.0.0.1:19842", "", "",
     kRestartProcess, CONFIG_FIELD(metrics.listen),
     "Address of the Prometheus `/metrics` endpoint: `host:port`, IPv6 as `[addr]:port`; "
     "`0.0.0.0:19842` listens on every interface."},
    {"metrics.basic_auth.username", Type::kString, Presence::kRequired, "", "", "", kRestartProcess,
     CONFIG_FIELD(metrics.basic_auth_username),
     "With `basic_auth` given: the user name `/metrics` requires (HTTP basic auth)."},
    {"metrics.basic_auth.password_file", Type::kPath, Presence::kRequired, "", "", "",
     kRestartProcess, CONFIG_FIELD(metrics.basic_auth_password_file),
     "With `basic_auth` given: file holding the password, so the config itself can be "
     "world-readable."},
    // full by default, up to full_max_bytes: on a just-written (cached) checkpoint of 256 MiB
    // full costs 0.03-0.07 s more than structure and is the only level that finds NaN/Inf
    // weights (docs/performance.md, "NaN/Inf by default").
    {"verify.level", Type::kEnum, Presence::kDefault, "full", "", "", kLive,
     CONFIG_FIELD(verify.level),
     "How deep to verify: `header` (signature and superblock), `structure` (plus every "
     "object's metadata), `full` (plus every byte of data, NaN/Inf scan; files over "
     "`full_max_bytes` get `structure`)."},
    {"verify.full_max_bytes", Type::kSize, Presence::kDefault, "256MiB", "0", "1PiB", kLive,
     CONFIG_FIELD(verify.full_max_bytes),
     "Files larger than this are verified at `structure` even where `full` is asked: "
     "NaN/Inf is looked for where reading every byte costs little. Raise it to read larger "
     "files whole."},
    {"verify.max_parallel", Type::kInt, Presence::kDefault, "2", "1", "64", kLive,
     CONFIG_FIELD(verify.max_parallel), "Verifier processes running at once; as many warm ones wait, forked ahead, for new owners."},
    {"verify.timeout", Type::kDuration, Presence::kDefault, "5m", "1s", "1d", kLive,
     CONFIG_FIELD(verify.timeout),
     "A verifier running longer is killed and the file's verdict is `timeout`."},
    {"verify.memory_limit", Type::kSize, Presence::kDefault, "2GiB", "64MiB", "1TiB", kLive,
     CONFIG_FIELD(verify.memory_limit), "Memory limit of each verifier process."},
    {"verify.queue_limit", Type::kInt, Presence::kDefault, "10000", "1", "1000000", kLive,
     CONFIG_FIELD(verify.queue_limit),
     "Most files waiting for a verifier. Past it, settled files wait their turn in the watch "
     "(backpressure: nothing is dropped, memory grows by the path names only)."},
    {"verify.load_target.keras", Type::kVersion, Presence::kOptional, "", "", "", kLive,
     CONFIG_FIELD(verify.load_target_keras),
     "Keras version (`major.minor`: `2.15`, `3.6`) of the environment expected to load the "
     "checkpoints: each ok verdict also gets a load outcome judged against it (docs/verify.md, "
     "Load prediction). Unset: only what is certain without one."},
    {"verify.load_target.python", Type::kVersion, Presence::kOptional, "", "", "", kLive,
     CONFIG_FIELD(verify.load_target_python),
     "Python version (`3.11`) of that environment; named in Lambda bytecode warnings."},
    {"state.file", Type::kPath, Presence::kOptional, "", "", "", kRestartProcess,
     CONFIG_FIELD(state.file),
     "Where the last verdict of each file is kept across restarts (JSON, replaced atomically). "
     "Unset: `$STATE_DIRECTORY/state.json` when systemd sets `StateDirectory=`, else no state "
     "(a restart verifies the newest file of each watch again)."},
    {"status.socket", Type::kPath, Presence::kOptional, "", "", "", kRestartProcess,
     CONFIG_FIELD(status.socket),
     "Unix socket `ckptwatch status` asks (mode 0660, group `adm` where the daemon may set it). "
     "Unset: `$RUNTIME_DIRECTORY/status.sock` under systemd, else `/run/ckptwatch/status.sock`."},
    {"watches[].name", Type::kName, Presence::kDerived, "from `path`", "", "", kRestartWatch,
     WATCH_FIELD(name),
     "Unique name, the `watch` label of metrics: 1-64 of `A-Z a-z 0-9 _ . -`. Derived from the "
     "last path component (the last two when the last is generic, like `checkpoints`)."},
    {"watches[].path", Type::kPath, Presence::kRequired, "", "", "", kRestartWatch,
     WATCH_FIELD(path),
     "Directory to watch. Relative paths resolve against the config file's directory. It need "
     "not exist: a missing directory is the watch's state `missing`, not a config error."},
    {"watches[].recursive", Type::kBool, Presence::kDefault, "false", "", "", kRestartWatch,
     WATCH_FIELD(recursive), "Watch subdirectories too."},
    {"watches[].patterns", Type::kGlobs, Presence::kDefault,
     R"(["*.h5", "*.hdf5", "*.keras", "*.pt", "*.pth", "*.bin", "*.ckpt", "*.safetensors"])", "",
     "", kLive, WATCH_FIELD(patterns),
     "File-name globs (fnmatch) of the files to verify; `.weights.h5` matches `*.h5`. The format "
     "comes from the content, not the name; a `.bin` file that is no checkpoint is skipped "
     "quietly."},
    {"watches[].exclude", Type::kGlobs, Presence::kDefault,
     R"(["*.orbax-checkpoint-tmp-*", "tmp-checkpoint-*", "*.tmp", ".tmp*"])", "", "", kLive,
     WATCH_FIELD(exclude),
     "Globs (fnmatch) on each path component below the root: a matching file, or anything in a "
     "matching directory, is not verified. The defaults are atomic-save staging directories "
     "(Orbax, Hugging Face Trainer's `tmp-checkpoint-N`, `*.tmp`): their rename into place is "
     "verified, once. Setting it replaces the defaults."},
    {"watches[].backend", Type::kEnum, Presence::kDefault, "auto", "", "", kRestartWatch,
     WATCH_FIELD(backend),
     "How changes are noticed: `inotify`, `poll` (rescans; for NFS and other network "
     "filesystems), or `auto` (inotify, falling back to poll)."},
    {"watches[].poll_interval", Type::kDuration, Presence::kDefault, "10s", "100ms", "1d", kLive,
     WATCH_FIELD(poll_interval), "Rescan period when polling."},
    {"watches[].settle", Type::kDuration, Presence::kDefault, "1s", "0s", "1h", kLive,
     WATCH_FIELD(settle), "Quiet time after a file's last change before it is verified."},
    {"watches[].stuck_after", Type::kDuration, Presence::kDefault, "2m", "1s", "1d", kLive,
     WATCH_FIELD(stuck_after),
     "Second look at an incomplete file whose writer may still be at work: one a process still "
     "holds open for writing, or any, when polling (no close event to go by); with inotify, also "
     "a file written but never closed, once no write came for this long. Still incomplete then: "
     "a failed save (`stuck` while a process holds it open). A file its writer closed incomplete "
     "fails at once (docs/reliability.md)."},
    {"watches[].checkpoint_settle", Type::kDuration, Presence::kDefault, "30s", "1s", "1d", kLive,
     WATCH_FIELD(checkpoint_settle),
     "How long a checkpoint set's directory must be quiet, with every member closed, before a "
     "save whose commit point never came is judged (a DCP save without `.metadata`, a DeepSpeed "
     "tag whose `latest` lives above it): `incomplete`, a failed save. A set whose commit point "
     "its writer closed is judged at once (docs/checkpoint-sets.md)."},
    {"watches[].level", Type::kEnum, Presence::kDerived, "`verify.level`", "", "", kLive,
     WATCH_FIELD(level), "Verification level for this watch."},
    {"watches[].expect_every", Type::kDuration, Presence::kOptional, "", "1s", "30d", kLive,
     WATCH_FIELD(expect_every),
     "The watch is `stale` when no good checkpoint appeared for this long."},
    {"watches[].min_free", Type::kFreeSpace, Presence::kOptional, "", "", "", kLive,
     WATCH_FIELD(min_free),
     "Free space the filesystem must keep, as a size (`10GiB`) or a percentage (`5%`)."},
    {"watches[].writer", Type::kUser, Presence::kOptional, "", "", "", kLive, WATCH_FIELD(writer),
     "User (name or uid) that must be able to write new checkpoints here."},
    {"watches[].readers", Type::kPrincipals, Presence::kOptional, "", "", "", kLive,
     WATCH_FIELD(readers),
     "Users and groups that must be able to read the checkpoints: a name is a user if one "
     "exists, else a group; `user:NAME` or `group:NAME` says which; numbers are ids."},
    {"watches[].run_depth", Type::kInt, Presence::kDefault, "0", "0", "16", kRestartWatch,
     WATCH_FIELD(run_depth),
     "With `recursive: true`, the path component at this depth below the root names a run "
     "(`1`: `/srv/runs/<run>/…`): the `run` label of the last good checkpoint, save failure "
     "and last-checkpoint-ok metrics, and `run=` in the log lines of its files. Files above "
     "that depth have no run. `0`: no runs."},
    {"watches[].max_runs", Type::kInt, Presence::kDefault, "100", "1", "10000", kLive,
     WATCH_FIELD(max_runs),
     "With `run_depth`: runs that keep their own series. When a new run appears beyond it, "
     "the series of the run whose files were written or verified least recently are removed "
     "(`event=run_expired`)."},
    {"watches[].load_target.keras", Type::kVersion, Presence::kDerived,
     "`verify.load_target.keras`", "", "", kLive, WATCH_FIELD(load_target_keras),
     "Keras version expected to load this watch's checkpoints. A watch with a `load_target` "
     "of its own ignores `verify.load_target` entirely."},
    {"watches[].load_target.python", Type::kVersion, Presence::kDerived,
     "`verify.load_target.python`", "", "", kLive, WATCH_FIELD(load_target_python),
     "Python version expected to load this watch's checkpoints."},
    {"watches[].fail_on_incompatible", Type::kBool, Presence::kDefault, "false", "", "", kLive,
     WATCH_FIELD(fail_on_incompatible),
     "A checkpoint whose load outcome is `incompatible` is a failed save (cause "
     "`load_incompatible`), not only a warning."},
};

#undef CONFIG_FIELD
#undef WATCH_FIELD

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

// The config text of `p`. Groups keep their prefix: a bare name reads back as a user when a
// user of that name exists.
std::string FormatPrincipal(const Principal& p) {
  return p.kind == Principal::Kind::kGroup ? "group:" + p.name : p.name;
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

}  // namespace

std::span<const std::string_view> ChoicesOf(const LogFormat*) { return kLogFormatNames; }
std::span<const std::string_view> ChoicesOf(const LogLevel*) { return kLogLevelNames; }
std::span<const std::string_view> ChoicesOf(const WatchBackend*) { return kBackendNames; }
std::span<const std::string_view> ChoicesOf(const Level*) {
  // Built from verdict.h so the two spellings cannot drift apart.
  static const std::array<std::string_view, 3> names{
      LevelName(Level::kHeader), LevelName(Level::kStructure), LevelName(Level::kFull)};
  return names;
}

std::span<const Key> Keys() { return kKeys; }

const Key* FindKey(std::string_view name) {
  for (const Key& key : kKeys) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

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

// Defaults need no check here: every load applies them through the same parsers and bounds as
// the file's values.
std::string TableProblems() {
  std::string problems;
  for (const Key& key : kKeys) {
    const bool type_fits = std::visit(
        [&](auto field) {
          using T = std::remove_pointer_t<decltype(field(nullptr, nullptr))>;
          if constexpr (std::is_same_v<T, std::string>) {
            return key.type == Type::kString || key.type == Type::kName ||
                   key.type == Type::kPath || key.type == Type::kListen ||
                   key.type == Type::kVersion;
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
    // PlanReload() restarts watches, never all of them for a global key.
    if (key.reload == ReloadEffect::kRestartWatch && !StartsWith(key.name, kWatchPrefix)) {
      problems += std::string(key.name) + ": only a watches[] key can restart its watch\n";
    }
  }
  return problems;
}

}  // namespace config_table

std::string_view LogFormatName(LogFormat format) {
  return config_table::kLogFormatNames[static_cast<size_t>(format)];
}
std::string_view LogLevelName(LogLevel level) {
  return config_table::kLogLevelNames[static_cast<size_t>(level)];
}
std::string_view WatchBackendName(WatchBackend backend) {
  return config_table::kBackendNames[static_cast<size_t>(backend)];
}
std::string_view ReloadEffectName(ReloadEffect effect) {
  switch (effect) {
    case ReloadEffect::kLive:
      return "live";
    case ReloadEffect::kRestartWatch:
      return "restarts watch";
    case ReloadEffect::kRestartProcess:
      return "restart";
  }
  return "restart";
}

}  // namespace ckptwatch
