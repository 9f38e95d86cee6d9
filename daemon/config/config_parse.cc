// Parsing one key's value: a YAML node checked against the key's type and bounds, into its
// field, or an error at the value's position saying what is wrong and what would be right.
#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <type_traits>

#include "config/config_table.h"
#include "verify/load_check.h"

namespace ckptwatch::config_table {
namespace {

namespace fs = std::filesystem;

std::string_view TypeWord(Type type) {
  switch (type) {
    case Type::kString:
    case Type::kName:
    case Type::kPath:
    case Type::kListen:
    case Type::kUser:
      return "a string";
    case Type::kVersion:
      return "a version";
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

// The scalar text of `node` for `site`, or nullopt after reporting why there is none.
std::optional<std::string> ScalarText(Diagnostics& diag, const Site& site, const YAML::Node& node) {
  if (!node.IsScalar()) {
    diag.Error(site.mark, site.display,
               "expected " + std::string(TypeWord(site.key->type)) + ", got " +
                   std::string(NodeWord(node)));
    return std::nullopt;
  }
  const std::string& text = node.Scalar();
  if (text.find('\0') != std::string::npos) {
    diag.Error(site.mark, site.display, QuoteForMessage(text) + " contains a NUL byte");
    return std::nullopt;
  }
  return text;
}

// Checks `value` against the key's bounds, parsed with `parse` from the table's text.
template <class T, class Parse, class Format>
bool InBounds(Diagnostics& diag, const Site& site, const std::string& text, T value, Parse parse,
              Format format) {
  T min{}, max{};
  std::string ignored;
  const bool has_min = !site.key->min.empty() && parse(site.key->min, &min, &ignored);
  const bool has_max = !site.key->max.empty() && parse(site.key->max, &max, &ignored);
  if ((has_min && value < min) || (has_max && value > max)) {
    diag.Error(
        site.mark, site.display,
        QuoteForMessage(text) + " is out of range: must be " + format(min) + " to " + format(max));
    return false;
  }
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

// Absolute, lexically normal, no trailing slash; nullopt after reporting a problem.
std::optional<std::string> ResolvePath(Diagnostics& diag, const Site& site,
                                       const std::string& text) {
  if (text.empty()) {
    diag.Error(site.mark, site.display, "needs a path");
    return std::nullopt;
  }
  if (text[0] == '~') {
    diag.Error(site.mark, site.display,
               QuoteForMessage(text) + ": '~' is not expanded; write the absolute path");
    return std::nullopt;
  }
  if (text.size() > 4096) {
    diag.Error(site.mark, site.display, QuoteForMessage(text) + " is longer than PATH_MAX");
    return std::nullopt;
  }
  fs::path path = (diag.base_dir() / text).lexically_normal();
  std::string resolved = path.string();
  while (resolved.size() > 1 && resolved.back() == '/') resolved.pop_back();
  return resolved;
}

// Parses `node` into *out. One overload per C++ type the table stores.
void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node, std::string* out) {
  const std::optional<std::string> text = ScalarText(diag, site, node);
  if (!text) return;
  switch (site.key->type) {
    case Type::kPath:
      if (std::optional<std::string> path = ResolvePath(diag, site, *text)) *out = *path;
      return;
    case Type::kListen:
      if (std::string problem = ListenProblem(*text); !problem.empty()) {
        diag.Error(site.mark, site.display, QuoteForMessage(*text) + " " + problem);
        return;
      }
      break;
    case Type::kName:
      if (!ValidName(*text)) {
        diag.Error(site.mark, site.display,
                   QuoteForMessage(*text) + " is not a name: use 1 to 64 of A-Z a-z 0-9 _ . -");
        return;
      }
      break;
    case Type::kVersion: {
      std::pair<int, int> version;
      std::string err;
      if (!ParseVersion(*text, &version, &err)) {
        diag.Error(site.mark, site.display, err);
        return;
      }
      break;
    }
    default:
      if (text->empty() || text->size() > 256) {
        diag.Error(site.mark, site.display, "needs 1 to 256 characters");
        return;
      }
      break;
  }
  *out = *text;
}

void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node, bool* out) {
  const std::optional<std::string> text = ScalarText(diag, site, node);
  if (!text) return;
  // YAML 1.2 booleans only: "yes"/"no"/"on" are the classic source of surprises.
  if (*text == "true" || *text == "True" || *text == "TRUE") {
    *out = true;
  } else if (*text == "false" || *text == "False" || *text == "FALSE") {
    *out = false;
  } else {
    diag.Error(site.mark, site.display, QuoteForMessage(*text) + " is not true or false");
  }
}

void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node, int* out) {
  const std::optional<std::string> text = ScalarText(diag, site, node);
  if (!text) return;
  std::int64_t value = 0;
  std::string err;
  if (!ParseInt(*text, &value, &err)) {
    diag.Error(site.mark, site.display, err);
    return;
  }
  if (InBounds(diag, site, *text, value, ParseInt,
               [](std::int64_t v) { return std::to_string(v); })) {
    *out = static_cast<int>(value);
  }
}

void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node, Millis* out) {
  const std::optional<std::string> text = ScalarText(diag, site, node);
  if (!text) return;
  Millis value{};
  std::string err;
  if (!ParseDuration(*text, &value, &err)) {
    diag.Error(site.mark, site.display, err);
    return;
  }
  if (InBounds(diag, site, *text, value, ParseDuration, FormatDuration)) *out = value;
}

void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node, std::uint64_t* out) {
  const std::optional<std::string> text = ScalarText(diag, site, node);
  if (!text) return;
  std::uint64_t value = 0;
  std::string err;
  if (!ParseSize(*text, &value, &err)) {
    diag.Error(site.mark, site.display, err);
    return;
  }
  if (InBounds(diag, site, *text, value, ParseSize, FormatSize)) *out = value;
}

void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node,
           std::optional<SpaceThreshold>* out) {
  const std::optional<std::string> text = ScalarText(diag, site, node);
  if (!text) return;
  SpaceThreshold value;
  std::string err;
  if (!ParseSpaceThreshold(*text, &value, &err)) {
    diag.Error(site.mark, site.display, err);
    return;
  }
  *out = value;
}

void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node,
           std::optional<Millis>* out) {
  Millis value{};
  const size_t errors_before = diag.error_count();
  Parse(diag, site, node, &value);
  if (diag.error_count() == errors_before) *out = value;
}

void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node,
           std::optional<Principal>* out) {
  const std::optional<std::string> text = ScalarText(diag, site, node);
  if (!text) return;
  std::string why;
  if (std::optional<Principal> p = ResolvePrincipal(*text, /*users_only=*/true, &why)) {
    *out = std::move(p);
  } else {
    diag.Error(site.mark, site.display, why);
  }
}

template <class E>
requires std::is_enum_v<E>
void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node, E* out) {
  const std::optional<std::string> text = ScalarText(diag, site, node);
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
  diag.Error(site.mark, site.display, message);
}

// A list of scalars, each checked by `item`; an empty or absent list is left to the caller.
template <class T, class Item>
void ParseList(Diagnostics& diag, const Site& site, const YAML::Node& node, std::vector<T>* out,
               Item item) {
  if (!node.IsSequence()) {
    diag.Error(site.mark, site.display, "expected a list, got " + std::string(NodeWord(node)));
    return;
  }
  std::vector<T> values;
  bool ok = true;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node element = node[i];
    Site element_site{site.key, site.display + "[" + std::to_string(i) + "]", element.Mark()};
    if (element_site.mark.is_null()) element_site.mark = site.mark;
    if (!element.IsScalar()) {
      diag.Error(element_site.mark, element_site.display,
                 "expected a string, got " + std::string(NodeWord(element)));
      ok = false;
      continue;
    }
    std::optional<std::string> text = ScalarText(diag, element_site, element);
    std::optional<T> value = text ? item(element_site, *text) : std::nullopt;
    if (value) {
      values.push_back(std::move(*value));
    } else {
      ok = false;
    }
  }
  if (ok) *out = std::move(values);
}

void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node,
           std::vector<std::string>* out) {
  ParseList(diag, site, node, out,
            [&](const Site& s, const std::string& glob) -> std::optional<std::string> {
              if (glob.empty() || glob.size() > 255 || glob.find('/') != std::string::npos) {
                diag.Error(s.mark, s.display,
                           QuoteForMessage(glob) +
                               " is not a file-name glob (1 to 255 characters, no '/')");
                return std::nullopt;
              }
              return glob;
            });
  if (out->empty() && node.IsSequence() && node.size() == 0) {
    diag.Error(site.mark, site.display, "needs at least one pattern");
  }
}

void Parse(Diagnostics& diag, const Site& site, const YAML::Node& node,
           std::vector<Principal>* out) {
  ParseList(diag, site, node, out,
            [&](const Site& s, const std::string& spec) -> std::optional<Principal> {
              std::string why;
              std::optional<Principal> p = ResolvePrincipal(spec, /*users_only=*/false, &why);
              if (!p) diag.Error(s.mark, s.display, why);
              return p;
            });
}

}  // namespace

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

void Assign(Diagnostics& diag, const Site& site, const YAML::Node& node, Config* config,
            WatchConfig* watch) {
  std::visit(
      [&](auto field) {
        auto* out = field(config, watch);
        if (node.IsNull()) {
          if (site.key->presence == Presence::kOptional) {
            *out = {};
          } else {
            diag.Error(site.mark, site.display,
                       "needs a value (" + std::string(TypeWord(site.key->type)) + ")");
          }
          return;
        }
        Parse(diag, site, node, out);
      },
      site.key->field);
}

}  // namespace ckptwatch::config_table
