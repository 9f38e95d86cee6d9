#include "cli/latest_command.h"

#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

#include "base/text_escape.h"
#include "cli/set_output.h"
#include "cli/verify_command.h"
#include "report/logfmt.h"
#include "verify/sets/set_dir.h"
#include "verify/sets/set_finder.h"

namespace ckptwatch {
namespace {

constexpr char kLatestUsage[] =
    "usage: ckptwatch latest [--json] [--level header|structure|full] [--timeout SECONDS] DIR\n"
    "\n"
    "Prints the newest complete checkpoint under DIR: a checkpoint set (TF bundle or SavedModel,\n"
    "DCP, HF sharded weights, Trainer checkpoint-N, DeepSpeed global_stepN, Megatron iter_N) in\n"
    "DIR or one of its subdirectories, or a single-file checkpoint in DIR. Newer checkpoints that\n"
    "are incomplete or inconsistent are skipped, and said so on stderr, as are resume pointers\n"
    "(latest, latest_checkpointed_iteration.txt, TF checkpoint, last.ckpt) naming a broken set.\n"
    "Needs no daemon: it verifies what it needs, at --level structure by default.\n"
    "\n"
    "Exit status: 0 one is complete (its path printed), 1 none is complete, 2 error.\n";

struct Candidate {
  std::string path, layout;
  std::int64_t mtime_ns = 0, step = -1;
  const SetCandidate* set = nullptr;  // else a single file, `name` in DIR
  std::string name;
};

}  // namespace

int RunLatestCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                     const std::string& engine) {
  bool json = false;
  Level level = Level::kStructure;
  double timeout = 300;
  std::string dir_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 < args.size()) return args[++i];
      return std::nullopt;
    };
    if (arg == "--help" || arg == "-h") {
      out << kLatestUsage;
      return 0;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--level") {
      auto text = value();
      auto parsed = text ? ParseLevel(*text) : std::nullopt;
      if (!parsed) {
        err << "ckptwatch latest: --level takes header, structure or full\n\n" << kLatestUsage;
        return 2;
      }
      level = *parsed;
    } else if (arg == "--timeout") {
      auto text = value();
      try {
        timeout = text ? std::stod(*text) : 0;
      } catch (const std::exception&) {
        timeout = 0;
      }
      if (!(timeout > 0) || timeout > 86400) {
        err << "ckptwatch latest: --timeout takes seconds between 0 and 86400\n\n" << kLatestUsage;
        return 2;
      }
    } else if (!arg.empty() && arg[0] == '-') {
      err << "ckptwatch latest: unknown option " << EscapeForDisplay(arg, false) << "\n\n"
          << kLatestUsage;
      return 2;
    } else if (dir_path.empty()) {
      dir_path = arg;
    } else {
      err << "ckptwatch latest: one DIR only\n\n" << kLatestUsage;
      return 2;
    }
  }
  if (dir_path.empty()) {
    err << "ckptwatch latest: no DIR given\n\n" << kLatestUsage;
    return 2;
  }
  std::string error;
  std::optional<SetDir> dir = SetDir::Open(dir_path, &error);
  if (!dir) {
    err << "ckptwatch latest: " << EscapeForDisplay(error, false) << "\n";
    return 2;
  }

  SetCheckOptions options;
  options.level = level;
  options.verify_member = [&](int fd, const std::string& path) {
    return VerifyMember(engine, fd, path, level, timeout);
  };
  FoundSets found = FindSets(dir_path, false, options, &error);
  std::vector<Candidate> candidates;
  bool sharded_here = false;
  for (const SetCandidate& s : found.sets) {
    candidates.push_back({s.path(), s.layout(), s.mtime_ns(), s.step(), &s, ""});
    sharded_here = sharded_here || (s.layout() == "hf_sharded" && s.dir() == dir->path());
  }
  // Single-file checkpoints in DIR; a shard of sharded weights is not one.
  const bool dir_is_set =
      std::any_of(found.sets.begin(), found.sets.end(),
                  [&](const SetCandidate& s) { return s.path() == dir->path(); });
  for (const std::string& name : dir_is_set ? std::vector<std::string>{} : dir->List()) {
    if (!IsWeightFileName(name) || (sharded_here && name.find("-of-") != std::string::npos))
      continue;
    const MemberStat st = dir->Stat(name);
    if (st.kind != EntryKind::kRegular) continue;  // last.ckpt as a symlink is a pointer
    candidates.push_back({dir->Join(name), "file", st.mtime_ns, -1, nullptr, name});
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Candidate& a, const Candidate& b) {
                     if (a.mtime_ns != b.mtime_ns) return a.mtime_ns > b.mtime_ns;
                     return a.step > b.step;
                   });

  nlohmann::json skipped = nlohmann::json::array();
  const Candidate* chosen = nullptr;
  for (const Candidate& c : candidates) {
    std::string verdict, reason;
    if (c.set) {
      const SetReport& report = c.set->Check();
      if (report.ok()) {
        chosen = &c;
        break;
      }
      verdict = SetVerdictName(report.verdict);
      reason = report.reason;
    } else {
      OpenedEntry file = dir->Open(c.name);
      if (file.kind != EntryKind::kRegular) continue;
      MemberCheck check = VerifyMember(engine, file.fd.get(), c.path, level, timeout);
      if (check.verdict == Verdict::kOk) {
        chosen = &c;
        break;
      }
      verdict = std::string(VerdictName(check.verdict));
      reason = check.reason;
    }
    err << "ckptwatch latest: skipping " << EscapeForDisplay(c.path, false) << ": " << verdict
        << ": " << EscapeForDisplay(Utf8Prefix(reason, 4096), false) << "\n";
    skipped.push_back({{"path", EscapeBytes(c.path)},
                       {"layout", c.layout},
                       {"verdict", verdict},
                       {"reason", EscapeBytes(std::string(Utf8Prefix(reason, 4096)))}});
  }
  nlohmann::json pointers = nlohmann::json::array();
  for (const PointerReport& p : JudgePointers(found)) {
    if (p.verdict == "ok") continue;
    err << "ckptwatch latest: " << PointerTextLine(p) << "\n";
    pointers.push_back(PointerToJson(p));
  }
  if (json) {
    nlohmann::json j;
    j["kind"] = "latest";
    j["path"] = chosen ? nlohmann::json(EscapeBytes(chosen->path)) : nlohmann::json(nullptr);
    j["layout"] = chosen ? nlohmann::json(chosen->layout) : nlohmann::json(nullptr);
    if (chosen && chosen->step >= 0) j["step"] = chosen->step;
    j["skipped"] = skipped;
    j["pointers"] = pointers;
    out << DumpJsonLine(j) << "\n";
  } else if (chosen) {
    out << EscapeForDisplay(chosen->path, false) << "\n";
  }
  if (!chosen) {
    err << "ckptwatch latest: no complete checkpoint under " << EscapeForDisplay(dir_path, false)
        << (candidates.empty() ? " (none found)" : "") << "\n";
    return 1;
  }
  return 0;
}

}  // namespace ckptwatch
