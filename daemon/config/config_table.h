// The key table behind config.h, and the per-key functions it drives: one row per key (name,
// type, default, bounds, reload effect, meaning). Internal to config_*.cc and their tests; the
// rest of the daemon includes config.h.
//   config_table.cc    the rows, lookups, value formatting, the table's self-check
//   config_parse.cc    a YAML value -> a field, with its validation and error message
//   config_loader.cc   the YAML document -> a Config: walking, file:line errors, did-you-mean
//   config_describe.cc check-config's YAML, docs/config.md's table, reload planning
#pragma once

#include <yaml-cpp/mark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "config/config.h"

namespace YAML {
class Node;
}

namespace ckptwatch::config_table {

using Millis = std::chrono::milliseconds;

/// Where a key's value lives: a captureless function, so the table stays data.
template <class T>
using Field = T* (*)(Config*, WatchConfig*);
using FieldRef = std::variant<Field<std::string>, Field<bool>, Field<int>, Field<Millis>,
                              Field<std::optional<Millis>>, Field<std::uint64_t>,
                              Field<std::optional<SpaceThreshold>>, Field<std::vector<std::string>>,
                              Field<std::optional<Principal>>, Field<std::vector<Principal>>,
                              Field<LogFormat>, Field<LogLevel>, Field<Level>, Field<WatchBackend>>;

/// What a value means, beyond its C++ type: the strings differ in validation.
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
  kVersion,
};

enum class Presence {
  kDefault,   ///< `default_text` (YAML) applies when the key is absent.
  kOptional,  ///< Absent means unset.
  kRequired,  ///< Must be given (within its section, if the section is given at all).
  kDerived,   ///< Computed from other keys when absent; `default_text` says how (docs only).
};

/// One row of the table.
struct Key {
  std::string_view name;  ///< Dotted; "watches[]." for keys of each watch.
  Type type;
  Presence presence;
  std::string_view default_text;
  std::string_view min;  ///< Bounds in the key's own units ("100ms", "64MiB"); "" for none.
  std::string_view max;
  ReloadEffect reload;  ///< What a SIGHUP that changes it does; see PlanReload().
  FieldRef field;
  std::string_view meaning;
};

inline constexpr std::string_view kWatchPrefix = "watches[].";
inline constexpr std::string_view kWatchesKey = "watches";

/// Every key, in the order of docs/config.md and of DescribeEffectiveConfig().
std::span<const Key> Keys();
/// The row named `name` ("log.level", "watches[].settle"), or null.
const Key* FindKey(std::string_view name);
/// The distinct next components of the keys below `prefix`: "log." gives file, format, ...;
/// "" gives log, metrics, verify, watches.
std::vector<std::string_view> ChildrenOf(std::string_view prefix);
/// True when some key lies below `name` ("metrics.basic_auth").
bool IsSection(std::string_view name);
/// Mistakes in the table itself, one per line; "" when there are none.
std::string TableProblems();

bool StartsWith(std::string_view s, std::string_view prefix);
/// The closest of `candidates` within edit distance 2 of `word`, for did-you-mean.
std::optional<std::string_view> Closest(std::string_view word,
                                        std::span<const std::string_view> candidates);
/// "a, b{last_sep}c".
std::string JoinOr(std::span<const std::string_view> words, std::string_view last_sep);

/// The spellings of an enum, indexed by its value.
std::span<const std::string_view> ChoicesOf(const LogFormat*);
std::span<const std::string_view> ChoicesOf(const LogLevel*);
std::span<const std::string_view> ChoicesOf(const WatchBackend*);
std::span<const std::string_view> ChoicesOf(const Level*);

/// The YAML text of `key`'s value in `config` (in `watch`, for a watches[] key), which loads
/// back to the same value; nullopt when an optional key is unset.
std::optional<std::string> FieldText(const Key& key, const Config& config,
                                     const WatchConfig* watch);

/// The errors of one load, each at a position in its source (config_loader.cc).
class Diagnostics {
 public:
  /// `base_dir` is what relative paths in `source` resolve against.
  Diagnostics(std::string source, std::filesystem::path base_dir);

  /// Records "source:line:column: key: message" (no key part when `key` is empty).
  void Error(const YAML::Mark& mark, std::string_view key, std::string_view message);
  /// "source:line:column", or the source alone for a null mark.
  std::string Location(const YAML::Mark& mark) const;
  bool ok() const { return errors_.empty(); }
  std::size_t error_count() const { return errors_.size(); }
  /// The errors in file order (those without a position first), one per line, capped.
  std::string Report();
  const std::filesystem::path& base_dir() const { return base_dir_; }
  /// Where `key` ("log.file", "watches[0].path") was given; a null mark when it was not.
  YAML::Mark MarkOf(const std::string& key) const;
  /// Whether an error was recorded for `key`.
  bool HasError(const std::string& key) const { return keys_in_error_.count(key) > 0; }
  /// Records that `key` was given at `mark`.
  void Given(const std::string& key, const YAML::Mark& mark) { marks_[key] = mark; }

 private:
  std::string source_;
  std::filesystem::path base_dir_;
  std::vector<std::pair<YAML::Mark, std::string>> errors_;
  std::map<std::string, YAML::Mark> marks_;
  std::set<std::string> keys_in_error_;
};

/// Where a value came from, for messages: "watches[0].settle" at a YAML mark.
struct Site {
  const Key* key;
  std::string display;  ///< The key with list indices filled in.
  YAML::Mark mark;
};

/// Sets `site.key`'s field from `node` (null unsets an optional key), or reports why it cannot
/// into `diag` and leaves the field alone (config_parse.cc).
void Assign(Diagnostics& diag, const Site& site, const YAML::Node& node, Config* config,
            WatchConfig* watch);
/// "a list", "a map", "nothing" or "a scalar", for "expected X, got Y".
std::string_view NodeWord(const YAML::Node& node);
/// A decimal integer; false with a message in *err otherwise.
bool ParseInt(std::string_view text, std::int64_t* out, std::string* err);

}  // namespace ckptwatch::config_table
