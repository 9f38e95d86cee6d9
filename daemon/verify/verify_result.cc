#include "verify/verify_result.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/text_escape.h"

namespace ckptwatch {

using nlohmann::json;

namespace {

constexpr std::string_view kEllipsis = "\u2026";  // "…"

// Cuts `s` to at most `max` bytes, the marker included, on a UTF-8 boundary.
void CapBytes(std::string* s, std::size_t max) {
  if (s->size() <= max) return;
  const std::string marker = std::string(kEllipsis) + " [" + std::to_string(s->size()) + " bytes]";
  *s = std::string(Utf8Prefix(*s, max - marker.size())) + marker;
}

bool IsMoreMarker(const std::string& s) {
  return s.rfind(std::string(kEllipsis) + " and ", 0) == 0;
}

std::size_t MoreCount(const std::string& s) {
  return static_cast<std::size_t>(std::strtoull(s.c_str() + kEllipsis.size() + 5, nullptr, 10));
}

std::string MoreMarker(std::size_t n) {
  return std::string(kEllipsis) + " and " + std::to_string(n) + " more";
}

json Escaped(const std::string& s) { return EscapeBytes(s); }

json EscapedList(const std::vector<std::string>& items) {
  json list = json::array();
  for (const std::string& item : items) list.push_back(Escaped(item));
  return list;
}

std::vector<std::string> UnescapedList(const json& list) {
  std::vector<std::string> items;
  for (const json& item : list) items.push_back(UnescapeBytes(item.get<std::string>()));
  return items;
}

// Load facts are names a file chose: printable ASCII only (so escaping cannot multiply them),
// each cut to kMaxLoadFactBytes, at most kMaxLoadFacts of them.
void BoundFacts(std::vector<std::string>* items) {
  if (items->size() > kMaxLoadFacts) items->resize(kMaxLoadFacts);
  for (std::string& item : *items) {
    if (item.size() > kMaxLoadFactBytes) item.resize(kMaxLoadFactBytes);
    for (char& c : item) {
      if (c < 0x20 || c > 0x7e || c == '\\' || c == '"') c = '?';
    }
  }
}

json ToJsonUnbounded(const VerifyResult& r) {
  json keras = nullptr;
  if (!r.keras.kind.empty()) {
    json classes = json::array();
    for (const std::string& c : r.keras.custom_classes) classes.push_back(Escaped(c));
    keras = {{"version", Escaped(r.keras.version)},
             {"backend", Escaped(r.keras.backend)},
             {"kind", Escaped(r.keras.kind)},
             {"custom_classes", std::move(classes)},
             {"builtin_classes", EscapedList(r.keras.builtin_classes)},
             {"modules", EscapedList(r.keras.modules)},
             {"keras1_arguments", EscapedList(r.keras.keras1_arguments)},
             {"lambdas", r.keras.lambdas},
             {"lambda_bytecode", r.keras.lambda_bytecode}};
  }
  json load = nullptr;
  if (r.load) {
    load = {{"outcome", LoadOutcomeName(r.load->outcome)},
            {"target", r.load->target.empty() ? json(nullptr) : Escaped(r.load->target)},
            {"reason", Escaped(r.load->reason)}};
  }
  auto optional = [](const auto& value) -> json {
    if (value) return *value;
    return nullptr;
  };
  return json{{"path", Escaped(r.path)},
              {"verdict", VerdictName(r.verdict)},
              {"ok", r.ok()},
              {"reason", Escaped(r.reason)},
              {"level", LevelName(r.level)},
              {"format", r.format.empty() ? json(nullptr) : Escaped(r.format)},
              {"bytes", r.bytes},
              {"expected_bytes", optional(r.expected_bytes)},
              {"superblock_version", optional(r.superblock_version)},
              {"datasets", r.datasets},
              {"parameters", r.parameters},
              {"nonfinite", optional(r.nonfinite)},
              {"keras", keras},
              {"pickle_globals", EscapedList(r.pickle_globals)},
              {"load", load},
              {"elapsed_ms", r.elapsed_ms}};
}

std::string Unescaped(const json& j) { return UnescapeBytes(j.get<std::string>()); }

}  // namespace

std::string_view LoadOutcomeName(LoadOutcome outcome) {
  switch (outcome) {
    case LoadOutcome::kLoads:
      return "loads";
    case LoadOutcome::kNeedsCustomObjects:
      return "needs_custom_objects";
    case LoadOutcome::kIncompatible:
      return "incompatible";
  }
  return "incompatible";
}

std::optional<LoadOutcome> ParseLoadOutcome(std::string_view name) {
  for (LoadOutcome o : {LoadOutcome::kLoads, LoadOutcome::kNeedsCustomObjects, LoadOutcome::kIncompatible}) {
    if (LoadOutcomeName(o) == name) return o;
  }
  return std::nullopt;
}

void BoundResult(VerifyResult* r) {
  CapBytes(&r->path, kMaxPathBytes);
  CapBytes(&r->reason, kMaxReasonBytes);
  CapBytes(&r->format, kMaxNameBytes);
  KerasInfo& k = r->keras;
  CapBytes(&k.version, kMaxNameBytes);
  CapBytes(&k.backend, kMaxNameBytes);
  CapBytes(&k.kind, kMaxNameBytes);
  BoundFacts(&k.builtin_classes);
  BoundFacts(&k.modules);
  BoundFacts(&k.keras1_arguments);
  BoundFacts(&r->pickle_globals);
  if (r->load) {
    CapBytes(&r->load->target, kMaxNameBytes);
    CapBytes(&r->load->reason, kMaxLoadReasonBytes);
  }
  std::vector<std::string>& classes = k.custom_classes;
  std::size_t more = 0;
  if (!classes.empty() && IsMoreMarker(classes.back())) {
    more = MoreCount(classes.back());
    classes.pop_back();
  }
  if (classes.empty() && more == 0) return;  // the rest is bounded above: nothing to measure
  for (std::string& c : classes) CapBytes(&c, kMaxNameBytes);
  // The rest of the line is bounded by the limits above (2 × 4 KiB, even with every byte
  // escaped six times over as \u00XX, stays under 64 KiB - 8 KiB); the class list gets the rest.
  std::vector<std::string> all = std::move(classes);
  classes.clear();
  auto cost = [](const std::string& c) { return Escaped(c).dump().size() + 1; };
  std::size_t used = ToJsonUnbounded(*r).dump().size();
  std::size_t kept = 0;
  for (; kept < all.size() && kept < kMaxCustomClasses; ++kept) {
    if (used + cost(all[kept]) > kMaxJsonBytes) break;
    used += cost(all[kept]);
  }
  if (kept < all.size() || more > 0) {
    // The marker takes a place in the list and in the line: give up names until it fits.
    auto marker = [&] { return cost(MoreMarker(all.size() - kept + more)); };
    while (kept > 0 && (kept + 1 > kMaxCustomClasses || used + marker() > kMaxJsonBytes)) {
      --kept;
      used -= cost(all[kept]);
    }
    more += all.size() - kept;
  }
  all.resize(kept);
  classes = std::move(all);
  if (more > 0) classes.push_back(MoreMarker(more));
}

json ToJson(const VerifyResult& result) {
  VerifyResult bounded = result;
  BoundResult(&bounded);
  return ToJsonUnbounded(bounded);
}

bool FromJson(const json& j, VerifyResult* r, std::string* err) {
  try {
    if (!j.is_object()) {
      *err = "not a JSON object";
      return false;
    }
    auto verdict = ParseVerdict(j.at("verdict").get<std::string>());
    auto level = ParseLevel(j.at("level").get<std::string>());
    if (!verdict || !level) {
      *err = "unknown verdict or level";
      return false;
    }
    r->path = Unescaped(j.at("path"));
    r->verdict = *verdict;
    r->level = *level;
    r->reason = Unescaped(j.at("reason"));
    r->format = j.at("format").is_null() ? "" : Unescaped(j.at("format"));
    r->bytes = j.at("bytes").get<std::uint64_t>();
    r->expected_bytes.reset();
    if (!j.at("expected_bytes").is_null())
      r->expected_bytes = j["expected_bytes"].get<std::uint64_t>();
    r->superblock_version.reset();
    if (!j.at("superblock_version").is_null())
      r->superblock_version = j["superblock_version"].get<int>();
    r->datasets = j.at("datasets").get<std::uint64_t>();
    r->parameters = j.at("parameters").get<std::uint64_t>();
    r->nonfinite.reset();
    if (!j.at("nonfinite").is_null()) r->nonfinite = j["nonfinite"].get<std::uint64_t>();
    r->keras = KerasInfo{};
    if (const json& k = j.at("keras"); !k.is_null()) {
      r->keras.version = Unescaped(k.at("version"));
      r->keras.backend = Unescaped(k.at("backend"));
      r->keras.kind = Unescaped(k.at("kind"));
      for (const json& c : k.at("custom_classes")) r->keras.custom_classes.push_back(Unescaped(c));
      r->keras.builtin_classes = UnescapedList(k.value("builtin_classes", json::array()));
      r->keras.modules = UnescapedList(k.value("modules", json::array()));
      r->keras.keras1_arguments = UnescapedList(k.value("keras1_arguments", json::array()));
      r->keras.lambdas = k.value("lambdas", 0);
      r->keras.lambda_bytecode = k.value("lambda_bytecode", 0);
    }
    r->pickle_globals = UnescapedList(j.value("pickle_globals", json::array()));
    r->load.reset();
    if (const auto it = j.find("load"); it != j.end() && !it->is_null()) {
      const std::optional<LoadOutcome> outcome = ParseLoadOutcome(it->at("outcome").get<std::string>());
      if (!outcome) {
        *err = "unknown load outcome";
        return false;
      }
      const json& target = it->at("target");
      r->load = LoadJudgement{*outcome, target.is_null() ? "" : Unescaped(target), Unescaped(it->at("reason"))};
    }
    r->elapsed_ms = j.at("elapsed_ms").get<double>();
    // The parent trusts nothing the child printed to be small.
    BoundResult(r);
    return true;
  } catch (const json::exception& e) {
    *err = e.what();
    return false;
  }
}

std::string FormatTextLine(const VerifyResult& result) {
  VerifyResult r = result;
  BoundResult(&r);
  std::string line = EscapeForDisplay(r.path, false) + ": " + std::string(VerdictName(r.verdict));
  if (!r.reason.empty()) line += ": " + EscapeForDisplay(r.reason, false);
  // The load outcome is worth a word when a target asked for it or something is in doubt.
  if (r.load && (!r.load->target.empty() || r.load->outcome != LoadOutcome::kLoads || !r.load->reason.empty())) {
    line += " [load";
    if (!r.load->target.empty()) line += " with " + EscapeForDisplay(r.load->target, false);
    line += ": " + std::string(LoadOutcomeName(r.load->outcome));
    if (!r.load->reason.empty()) line += ": " + EscapeForDisplay(r.load->reason, false);
    line += "]";
  }
  return line;
}

}  // namespace ckptwatch
