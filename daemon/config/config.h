// The daemon's configuration: the structs the rest of the daemon reads, and the YAML loader.
// Every key is declared once, in the key table in config_table.cc (name, type, default, bounds,
// reload effect, meaning); loading, validation errors, DescribeEffectiveConfig(), PlanReload()
// and docs/config.md all follow from that table.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/log_fields.h"
#include "config/units.h"
#include "verify/verdict.h"

namespace ckptwatch {

/// The metrics port when metrics.listen is not set. Outside Prometheus's exporter range
/// 9100-9999, which has no free ports left to claim; see docs/config.md.
inline constexpr int kDefaultMetricsPort = 19842;

enum class LogFormat { kText, kJson };
enum class WatchBackend { kAuto, kInotify, kPoll };

/// What a SIGHUP that changes a key does; each key's row in the table names one.
enum class ReloadEffect {
  kLive,            ///< Applied live: the running daemon takes the new value in place.
  kRestartWatch,    ///< Restarts the watch: stopped and started again (a rescan), pending kept.
  kRestartProcess,  ///< Needs a process restart: a reload that changes it is refused.
};

struct LogConfig {
  std::string file;  ///< Absolute path; empty means stderr.
  LogFormat format = LogFormat::kText;
  LogLevel level = LogLevel::kInfo;
  std::chrono::milliseconds summary_every{0};
  std::chrono::milliseconds repeat_every{0};
  bool operator==(const LogConfig&) const = default;
};

struct MetricsConfig {
  std::string listen;                    ///< "host:port" or "[v6addr]:port", validated.
  std::string basic_auth_username;       ///< Empty: no basic auth.
  std::string basic_auth_password_file;  ///< Absolute path; set iff the username is.
  bool operator==(const MetricsConfig&) const = default;
};

struct StatusConfig {
  std::string socket;  ///< Absolute path; empty: StatusSocketPath() picks.
  bool operator==(const StatusConfig&) const = default;
};
struct StateConfig {
  std::string file;  ///< Absolute path; empty: the daemon picks (StateFilePath()) or keeps none.
  bool operator==(const StateConfig&) const = default;
};
struct VerifyConfig {
  Level level = Level::kFull;
  std::uint64_t full_max_bytes = 0;
  int max_parallel = 0;
  std::chrono::milliseconds timeout{0};
  std::uint64_t memory_limit = 0;
  int queue_limit = 0;
  std::string load_target_keras;   ///< "2.15"; empty: no Keras target (load_check.h).
  std::string load_target_python;  ///< "3.11"; empty: no Python target.
  bool operator==(const VerifyConfig&) const = default;
};

/// A user or group that writer/readers name, resolved when the config loads.
struct Principal {
  enum class Kind { kUser, kGroup };
  Kind kind = Kind::kUser;
  std::uint32_t id = 0;  ///< uid or gid.
  std::string name;      ///< As written, without a "user:"/"group:" prefix.
  bool operator==(const Principal&) const = default;
};

struct WatchConfig {
  std::string name;  ///< Unique; a metric label.
  std::string path;  ///< Absolute and lexically normal; need not exist.
  bool recursive = false;
  std::vector<std::string> patterns;  ///< fnmatch() globs on the file name.
  std::vector<std::string> exclude;   ///< fnmatch() globs on each path component.
  WatchBackend backend = WatchBackend::kAuto;
  std::chrono::milliseconds poll_interval{0};
  std::chrono::milliseconds settle{0};
  std::chrono::milliseconds stuck_after{0};
  /// Quiet time after a checkpoint set's last member write, every member closed, before the set is
  /// judged without its commit point (decide/set_tracker.h).
  /// How long after its last member write a set without a commit point is judged
  /// (decide/checkpoint_sets.h). Not a configuration key yet: the daemon does not judge sets in
  /// this release (docs/checkpoint-sets.md, "In the daemon").
  std::chrono::milliseconds checkpoint_settle{std::chrono::seconds(30)};
  Level level = Level::kFull;  ///< Effective: verify.level unless the watch overrides it.
  std::optional<std::chrono::milliseconds> expect_every;
  std::optional<SpaceThreshold> min_free;
  std::optional<Principal> writer;  ///< Always a user.
  std::vector<Principal> readers;
  int run_depth = 0;  ///< The path component below the root that names a run; 0: no runs.
  int max_runs = 0;   ///< Runs with their own series at once (the least recently active go).
  /// Effective: verify.load_target unless the watch gives a load_target of its own.
  std::string load_target_keras;
  std::string load_target_python;
  bool fail_on_incompatible = false;  ///< A load outcome `incompatible` is a failed save.
  bool operator==(const WatchConfig&) const = default;
};

/// Defaults come from the key table, not from these member initializers: build a Config with
/// LoadConfigFile(), LoadConfigString() or DefaultConfig().
struct Config {
  std::string source;  ///< The file (or name) it was loaded from.
  StateConfig state;
  StatusConfig status;
  LogConfig log;
  MetricsConfig metrics;
  VerifyConfig verify;
  std::vector<WatchConfig> watches;
  bool operator==(const Config&) const = default;
};

/// A problem a check beyond the file finds in a loaded config (core/start_checks.h).
struct ConfigProblem {
  std::string key;      ///< "log.file"
  std::string message;  ///< Why, without the key: "cannot write /x.log: Permission denied"
};
/// Checks a config as loaded so far (keys in error keep their defaults).
using ConfigCheck = std::function<std::vector<ConfigProblem>(const Config&)>;

/// Loads and validates the YAML file at `path`. Relative paths in it resolve against the
/// file's directory. `check`, when given, runs on what loaded even when the file has errors;
/// its problems are reported with the file's, at their key's position. On failure returns
/// false, leaves *out alone and sets *err to every problem found (up to 20), one per line,
/// each "file:line:column: key: what is wrong".
bool LoadConfigFile(const std::string& path, Config* out, std::string* err,
                    const ConfigCheck& check = {});
/// As LoadConfigFile() for YAML text; `source_name` names it in messages, and relative paths
/// resolve against its directory when it contains a '/', else against the working directory.
bool LoadConfigString(std::string_view yaml, const std::string& source_name, Config* out,
                      std::string* err);
/// The embedded default: one watch on ./checkpoints (resolved against the working directory),
/// metrics on 127.0.0.1:kDefaultMetricsPort, text log to stderr.
Config DefaultConfig();

/// YAML for `check-config`: every key with its effective value, unset optional keys as
/// comments. Loading it again yields an equal Config.
std::string DescribeEffectiveConfig(const Config& config);
/// The key reference table (Markdown) that docs/config.md embeds.
std::string ConfigReferenceMarkdown();

/// What applying `next` over `old` by SIGHUP needs, from each key's ReloadEffect. Watches are
/// matched by name: one only in `next` is started, one only in `old` is stopped, and neither is
/// a restart (renaming a watch is both).
struct ReloadPlan {
  /// Changed keys that need a process restart ("metrics.listen").
  std::vector<std::string> blockers;
  /// Names of watches in both whose kRestartWatch keys changed.
  std::vector<std::string> restart_watches;
};
/// Blockers in table order (a watch's as "watches[NAME].key"); restart_watches in `next`'s
/// order, each once. Both empty when every change applies live.
ReloadPlan PlanReload(const Config& old, const Config& next);
/// PlanReload(old, next).blockers: empty when `next` can be applied by a reload.
std::vector<std::string> ReloadBlockers(const Config& old, const Config& next);

/// The config spelling of each value, e.g. "json", "warn", "inotify".
std::string_view LogFormatName(LogFormat format);
std::string_view LogLevelName(LogLevel level);
std::string_view WatchBackendName(WatchBackend backend);
/// As docs/config.md's Reload column: "live", "restarts watch", "restart".
std::string_view ReloadEffectName(ReloadEffect effect);

}  // namespace ckptwatch
