// What the key table says about a Config as a whole: check-config's YAML, the Markdown table in
// docs/config.md, and what a reload from one Config to another needs.
#include <map>
#include <set>
#include <type_traits>

#include "config/config_table.h"

namespace ckptwatch {
namespace {

using namespace config_table;

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
      for (const Key& key : Keys()) {
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
    case Type::kVersion:
      return "version";
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

// `text` as Markdown code. Appends rather than "`" + std::string(text): GCC 12 warns
// (-Wrestrict, a known false positive) on that once it is inlined here.
std::string Code(std::string_view text) {
  std::string code = "`";
  code += text;
  code += '`';
  return code;
}

std::string DefaultDoc(const Key& key) {
  switch (key.presence) {
    case Presence::kDefault:
      return Code(key.default_text);
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
  for (const Key& key : Keys()) {
    const std::string range =
        key.min.empty() && key.max.empty() ? "" : Code(key.min) + " – " + Code(key.max);
    text += "| " + Code(key.name) + " | " + MarkdownCell(TypeDoc(key)) + " | " +
            MarkdownCell(DefaultDoc(key)) + " | " + range + " | " +
            std::string(ReloadEffectName(key.reload)) + " | " + MarkdownCell(key.meaning) + " |\n";
  }
  return text;
}

ReloadPlan PlanReload(const Config& old, const Config& next) {
  ReloadPlan plan;
  // Watches are matched by name: a renamed watch is a removed one plus a new one. Indexed, as
  // a config may hold thousands of watches.
  std::map<std::string_view, const WatchConfig*> old_watches;
  for (const WatchConfig& watch : old.watches) old_watches.emplace(watch.name, &watch);
  std::set<std::string_view> restarted;
  for (const Key& key : Keys()) {
    if (key.reload == ReloadEffect::kLive) continue;
    if (!StartsWith(key.name, kWatchPrefix)) {
      // TableProblems() keeps kRestartWatch to watches[] keys.
      if (FieldText(key, old, nullptr) != FieldText(key, next, nullptr)) {
        plan.blockers.emplace_back(key.name);
      }
      continue;
    }
    for (const WatchConfig& after : next.watches) {
      const auto before = old_watches.find(after.name);
      if (before == old_watches.end() ||
          FieldText(key, old, before->second) == FieldText(key, next, &after)) {
        continue;
      }
      if (key.reload == ReloadEffect::kRestartProcess) {
        plan.blockers.push_back("watches[" + after.name + "]." +
                                std::string(key.name.substr(kWatchPrefix.size())));
      } else {
        restarted.insert(after.name);
      }
    }
  }
  for (const WatchConfig& watch : next.watches) {
    if (restarted.count(watch.name)) plan.restart_watches.push_back(watch.name);
  }
  return plan;
}

std::vector<std::string> ReloadBlockers(const Config& old, const Config& next) {
  return PlanReload(old, next).blockers;
}

}  // namespace ckptwatch
