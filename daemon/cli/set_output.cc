#include "cli/set_output.h"

#include "base/text_escape.h"

namespace ckptwatch {
namespace {

constexpr std::size_t kMaxListed = 1000;

nlohmann::json Names(const std::vector<std::string>& names) {
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t i = 0; i < names.size() && i < kMaxListed; ++i)
    list.push_back(EscapeBytes(names[i]));
  if (names.size() > kMaxListed)
    list.push_back("... and " + std::to_string(names.size() - kMaxListed) + " more");
  return list;
}

}  // namespace

nlohmann::json SetToJson(const SetReport& r) {
  nlohmann::json j;
  j["kind"] = "checkpoint";
  j["path"] = EscapeBytes(r.path);
  j["layout"] = r.layout;
  j["verdict"] = SetVerdictName(r.verdict);
  j["members"] = Names(r.members);
  j["missing"] = Names(r.missing);
  j["at_fault"] = Names(r.at_fault);
  j["reason"] = EscapeBytes(std::string(Utf8Prefix(r.reason, 4096)));
  if (r.step >= 0) j["step"] = r.step;
  return j;
}

std::string SetTextLine(const SetReport& r) {
  std::string line = EscapeForDisplay(r.path, false) + ": checkpoint " + r.layout + " " +
                     SetVerdictName(r.verdict);
  if (r.ok()) return line + " (" + std::to_string(r.members.size()) + " members)";
  return line + ": " + EscapeForDisplay(Utf8Prefix(r.reason, 4096), false);
}

nlohmann::json PointerToJson(const PointerReport& r) {
  nlohmann::json j;
  j["kind"] = "resume_pointer";
  j["path"] = EscapeBytes(r.path);
  j["pointer"] = r.kind;
  j["names"] = EscapeBytes(r.target);
  j["verdict"] = r.verdict;
  j["reason"] = EscapeBytes(std::string(Utf8Prefix(r.reason, 4096)));
  j["last_complete"] = EscapeBytes(r.last_complete);
  return j;
}

std::string PointerTextLine(const PointerReport& r) {
  if (r.verdict == "ok")
    return EscapeForDisplay(r.path, false) + ": resume pointer ok (" +
           EscapeForDisplay(r.target, false) + ")";
  return EscapeForDisplay(r.path, false) + ": resume pointer " + r.verdict + ": " +
         EscapeForDisplay(Utf8Prefix(r.reason, 4096), false);
}

}  // namespace ckptwatch
