#include "verify_result.h"

#include <nlohmann/json.hpp>

namespace ckptwatch {

using nlohmann::json;

json ToJson(const VerifyResult& r) {
  json keras = nullptr;
  if (!r.keras.kind.empty()) {
    keras = {{"version", r.keras.version},
             {"backend", r.keras.backend},
             {"kind", r.keras.kind},
             {"custom_classes", r.keras.custom_classes}};
  }
  auto optional = [](const auto& value) -> json {
    if (value) return *value;
    return nullptr;
  };
  return json{{"path", r.path},
              {"verdict", VerdictName(r.verdict)},
              {"ok", r.ok()},
              {"reason", r.reason},
              {"level", LevelName(r.level)},
              {"format", r.format.empty() ? json(nullptr) : json(r.format)},
              {"bytes", r.bytes},
              {"expected_bytes", optional(r.expected_bytes)},
              {"superblock_version", optional(r.superblock_version)},
              {"datasets", r.datasets},
              {"parameters", r.parameters},
              {"nonfinite", optional(r.nonfinite)},
              {"keras", keras},
              {"elapsed_ms", r.elapsed_ms}};
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
    r->path = j.at("path").get<std::string>();
    r->verdict = *verdict;
    r->level = *level;
    r->reason = j.at("reason").get<std::string>();
    r->format = j.at("format").is_null() ? "" : j.at("format").get<std::string>();
    r->bytes = j.at("bytes").get<std::uint64_t>();
    r->expected_bytes.reset();
    if (!j.at("expected_bytes").is_null()) r->expected_bytes = j["expected_bytes"].get<std::uint64_t>();
    r->superblock_version.reset();
    if (!j.at("superblock_version").is_null())
      r->superblock_version = j["superblock_version"].get<int>();
    r->datasets = j.at("datasets").get<std::uint64_t>();
    r->parameters = j.at("parameters").get<std::uint64_t>();
    r->nonfinite.reset();
    if (!j.at("nonfinite").is_null()) r->nonfinite = j["nonfinite"].get<std::uint64_t>();
    r->keras = KerasInfo{};
    if (const json& k = j.at("keras"); !k.is_null()) {
      r->keras.version = k.at("version").get<std::string>();
      r->keras.backend = k.at("backend").get<std::string>();
      r->keras.kind = k.at("kind").get<std::string>();
      r->keras.custom_classes = k.at("custom_classes").get<std::vector<std::string>>();
    }
    r->elapsed_ms = j.at("elapsed_ms").get<double>();
    return true;
  } catch (const json::exception& e) {
    *err = e.what();
    return false;
  }
}

std::string FormatTextLine(const VerifyResult& r) {
  std::string line = r.path + ": " + std::string(VerdictName(r.verdict));
  if (!r.reason.empty()) line += ": " + r.reason;
  return line;
}

}  // namespace ckptwatch
