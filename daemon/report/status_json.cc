#include "report/status_json.h"

#include <nlohmann/json.hpp>

#include "base/text_escape.h"
#include "report/logfmt.h"

namespace ckptwatch {
namespace {

using nlohmann::json;
constexpr int kStatusDocVersion = 1;

template <typename T>
bool Get(const json& j, const char* key, T* out) {
  if (!j.is_object() || !j.contains(key)) return false;
  const json& v = j[key];
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return false;
    *out = UnescapeBytes(v.get<std::string>());
  } else {
    if (!v.is_number()) return false;
    *out = v.get<T>();
  }
  return true;
}

// Every string is a name from outside (a file, a run, a reason quoting one): escaped as the
// log's JSON escapes it, so bytes that are not UTF-8 survive the trip and no two names read
// back the same.
std::string E(const std::string& text) { return EscapeBytes(text); }

}  // namespace

std::string StatusJson(const StatusSnapshot& status, long pid, const std::string& version) {
  json watches = json::array();
  for (const WatchStatus& w : status.watches) {
    json failing = json::array();
    for (const FailingFile& f : w.failing)
      failing.push_back({{"path", E(f.path)},
                         {"run", E(f.run)},
                         {"verdict", E(f.verdict)},
                         {"cause", E(f.cause)},
                         {"reason", E(f.reason)},
                         {"since", f.since_unix},
                         {"count", f.count}});
    json resolved = json::array();
    for (const ResolvedFailure& r : w.resolved)
      resolved.push_back({{"path", E(r.path)},
                          {"run", E(r.run)},
                          {"verdict", E(r.verdict)},
                          {"cause", E(r.cause)},
                          {"resolved_by", E(r.resolved_by)},
                          {"resolved", r.resolved_unix}});
    json load_problems = json::array();
    for (const LoadProblemFile& l : w.load_problems)
      load_problems.push_back({{"path", E(l.path)},
                               {"run", E(l.run)},
                               {"load", E(l.load)},
                               {"classes", E(l.classes)},
                               {"target", E(l.target)},
                               {"reason", E(l.reason)},
                               {"advice", E(l.advice)},
                               {"since", l.since_unix}});
    json problems = json::array();
    for (const WatchStatus::Problem& p : w.problems)
      problems.push_back({{"problem", E(p.name)}, {"reason", E(p.reason)}});
    json last_good = nullptr;
    if (w.last_good)
      last_good = {{"path", E(w.last_good->path)},
                   {"time", w.last_good->unix},
                   {"bytes", w.last_good->bytes}};
    json runs = json::array();
    for (const WatchStatus::Run& r : w.runs)
      runs.push_back({{"run", E(r.name)},
                      {"last_good",
                       {{"path", E(r.last_good.path)},
                        {"time", r.last_good.unix},
                        {"bytes", r.last_good.bytes}}}});
    json complete_sets = json::array();
    for (const WatchStatus::CompleteSet& c : w.complete_sets)
      complete_sets.push_back({{"run", E(c.run)},
                               {"path", E(c.path)},
                               {"layout", E(c.layout)},
                               {"step", c.step},
                               {"time", c.unix}});
    watches.push_back({{"name", E(w.name)},
                       {"path", E(w.path)},
                       {"state", E(w.state)},
                       {"backend", E(w.backend)},
                       {"last_good", last_good},
                       {"failing", failing},
                       {"failing_total", w.failing_total},
                       {"resolved", resolved},
                       {"load_problems", load_problems},
                       {"load_problems_total", w.load_problems_total},
                       {"problems", problems},
                       {"pending", w.pending},
                       {"runs", runs},
                       {"complete_sets", complete_sets}});
  }
  const json doc = {{"version", kStatusDocVersion}, {"ckptwatch", version}, {"pid", pid}, {"time", status.unix_now},
                    {"verifying", status.verifying}, {"queued", status.queued}, {"watches", watches}};
  // Safe on a terminal too (`ckptwatch status --json` prints it as it came).
  return DumpJsonLine(doc) + "\n";
}

bool ParseStatusJson(const std::string& text, StatusSnapshot* out, std::string* err) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  int version = 0;
  if (doc.is_discarded() || !Get(doc, "version", &version) || version != kStatusDocVersion ||
      !doc.contains("watches") || !doc["watches"].is_array()) {
    *err = "the daemon's answer is not a ckptwatch status document (version " +
           std::to_string(kStatusDocVersion) + ")";
    return false;
  }
  StatusSnapshot s;
  Get(doc, "time", &s.unix_now);
  Get(doc, "verifying", &s.verifying);
  Get(doc, "queued", &s.queued);
  for (const json& wj : doc["watches"]) {
    WatchStatus w;
    if (!Get(wj, "name", &w.name) || !Get(wj, "path", &w.path) || !Get(wj, "state", &w.state)) {
      *err = "a watch in the daemon's answer is malformed";
      return false;
    }
    Get(wj, "backend", &w.backend);
    Get(wj, "failing_total", &w.failing_total);
    Get(wj, "pending", &w.pending);
    if (wj.contains("last_good") && wj["last_good"].is_object()) {
      WatchStatus::LastGood g;
      Get(wj["last_good"], "path", &g.path);
      Get(wj["last_good"], "time", &g.unix);
      Get(wj["last_good"], "bytes", &g.bytes);
      w.last_good = g;
    }
    if (wj.contains("failing") && wj["failing"].is_array())
      for (const json& fj : wj["failing"]) {
        FailingFile f;
        Get(fj, "path", &f.path);
        Get(fj, "run", &f.run);
        Get(fj, "verdict", &f.verdict);
        Get(fj, "cause", &f.cause);
        Get(fj, "reason", &f.reason);
        Get(fj, "since", &f.since_unix);
        Get(fj, "count", &f.count);
        w.failing.push_back(std::move(f));
      }
    if (wj.contains("resolved") && wj["resolved"].is_array())
      for (const json& rj : wj["resolved"]) {
        ResolvedFailure r;
        Get(rj, "path", &r.path);
        Get(rj, "run", &r.run);
        Get(rj, "verdict", &r.verdict);
        Get(rj, "cause", &r.cause);
        Get(rj, "resolved_by", &r.resolved_by);
        Get(rj, "resolved", &r.resolved_unix);
        w.resolved.push_back(std::move(r));
      }
    Get(wj, "load_problems_total", &w.load_problems_total);
    if (wj.contains("load_problems") && wj["load_problems"].is_array())
      for (const json& lj : wj["load_problems"]) {
        LoadProblemFile l;
        Get(lj, "path", &l.path);
        Get(lj, "run", &l.run);
        Get(lj, "load", &l.load);
        Get(lj, "classes", &l.classes);
        Get(lj, "target", &l.target);
        Get(lj, "reason", &l.reason);
        Get(lj, "advice", &l.advice);
        Get(lj, "since", &l.since_unix);
        w.load_problems.push_back(std::move(l));
      }
    if (wj.contains("runs") && wj["runs"].is_array())
      for (const json& rj : wj["runs"]) {
        WatchStatus::Run r;
        Get(rj, "run", &r.name);
        if (rj.contains("last_good") && rj["last_good"].is_object()) {
          Get(rj["last_good"], "path", &r.last_good.path);
          Get(rj["last_good"], "time", &r.last_good.unix);
          Get(rj["last_good"], "bytes", &r.last_good.bytes);
        }
        w.runs.push_back(std::move(r));
      }
    if (wj.contains("complete_sets") && wj["complete_sets"].is_array())
      for (const json& cj : wj["complete_sets"]) {
        WatchStatus::CompleteSet c;
        Get(cj, "run", &c.run);
        Get(cj, "path", &c.path);
        Get(cj, "layout", &c.layout);
        Get(cj, "step", &c.step);
        Get(cj, "time", &c.unix);
        w.complete_sets.push_back(std::move(c));
      }
    if (wj.contains("problems") && wj["problems"].is_array())
      for (const json& pj : wj["problems"]) {
        WatchStatus::Problem p;
        Get(pj, "problem", &p.name);
        Get(pj, "reason", &p.reason);
        w.problems.push_back(std::move(p));
      }
    s.watches.push_back(std::move(w));
  }
  *out = std::move(s);
  return true;
}

}  // namespace ckptwatch
