#include "verify/sets/set_finder.h"

#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <optional>

#include "verify/sets/dcp_set.h"
#include "verify/sets/deepspeed_set.h"
#include "verify/sets/hf_sharded_set.h"
#include "verify/sets/megatron_set.h"
#include "verify/sets/tf_bundle.h"
#include "verify/sets/tf_saved_model.h"
#include "verify/sets/trainer_set.h"

namespace ckptwatch {
namespace {

constexpr std::size_t kMaxDirs = 10000;

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string ParentOf(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

std::int64_t StepOfDirName(const std::string& name) {
  for (const char* prefix : {"checkpoint-", "global_step", "iter_", "step_", "step-", "step"})
    if (std::int64_t s = StepFromName(name, prefix); s >= 0) return s;
  return -1;
}

// What the parent of a tag directory says about which tag is committed.
struct ParentPointers {
  std::optional<std::string> deepspeed_latest, megatron_tracker;
};

ParentPointers ReadParentPointers(const SetDir& parent) {
  ParentPointers out;
  std::string text, err;
  if (parent.ReadSmall("latest", 4096, &text, &err)) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    out.deepspeed_latest = text;
  }
  if (parent.ReadSmall("latest_checkpointed_iteration.txt", 4096, &text, &err))
    out.megatron_tracker = text;
  return out;
}

// Recognises the sets of one directory; `consumed` gets subdirectories that belong to a set found
// here (a SavedModel's variables/, Megatron's mp_rank_*), which are not offered again.
void Recognise(const std::shared_ptr<SetDir>& dir, const std::string& dir_name,
               const ParentPointers& parent, const SetCheckOptions& options, FoundSets* found,
               std::vector<std::string>* consumed) {
  auto names = std::make_shared<const std::vector<std::string>>(dir->List());
  const MemberStat self = dir->Stat("");
  auto mtime_of = [&](const std::string& member) {
    const MemberStat st = dir->Stat(member);
    return st.kind == EntryKind::kMissing ? self.mtime_ns : st.mtime_ns;
  };
  auto add = [&](std::string path, std::string layout, std::int64_t mtime, std::int64_t step,
                 std::function<SetReport()> judge) {
    found->sets.emplace_back(std::move(path), std::move(layout), dir->path(), mtime, step,
                             std::move(judge));
  };
  const std::int64_t step = StepOfDirName(dir_name);
  for (ResumePointer& p : FindResumePointers(*dir, *names)) found->pointers.push_back(std::move(p));

  if (LooksLikeDcp(*names)) {
    add(dir->path(), "dcp", mtime_of(".metadata"), step, [=] {
      SetReport r = CheckDcp(*dir, *names, options);
      r.step = step;
      return r;
    });
    return;
  }
  if (LooksLikeTrainerCheckpoint(dir_name, *names)) {
    add(dir->path(), "hf_trainer", mtime_of("trainer_state.json"), step,
        [=] { return CheckTrainerCheckpoint(*dir, dir_name, *names, options); });
    return;
  }
  if (LooksLikeSavedModel(*dir, *names)) {
    consumed->push_back("variables");
    consumed->push_back("assets");
    add(dir->path(), "tf_saved_model", mtime_of("saved_model.pb"), step, [=] {
      SetReport r = CheckSavedModel(*dir, *names, options);
      r.step = step;
      return r;
    });
    return;
  }
  if (LooksLikeMegatron(dir_name, *names)) {
    for (const std::string& n : *names)
      if (n.rfind("mp_rank_", 0) == 0) consumed->push_back(n);
    add(dir->path(), "megatron", self.mtime_ns, step,
        [=] { return CheckMegatron(*dir, dir_name, *names, parent.megatron_tracker, options); });
    return;
  }
  if (LooksLikeDeepSpeed(*names)) {
    add(dir->path(), "deepspeed", self.mtime_ns, step,
        [=] { return CheckDeepSpeed(*dir, dir_name, *names, parent.deepspeed_latest, options); });
    return;
  }
  // Sets that share a directory, each named by its index or prefix. Judged together (a
  // directory's bundles are found by reading their indexes anyway), handed out one by one.
  std::vector<SetReport> reports = FindTfBundles(*dir, "", *names, options);
  for (SetReport& r : FindTfV1Checkpoints(*dir, *names)) reports.push_back(std::move(r));
  for (SetReport& r : FindHfSharded(*dir, *names, options)) reports.push_back(std::move(r));
  for (SetReport& r : reports) {
    const std::string base = BaseName(r.path);
    const std::string commit = r.layout == "tf_bundle" ? base + ".index" : base;
    auto report = std::make_shared<SetReport>(std::move(r));
    add(report->path, report->layout, mtime_of(commit), step, [report] { return *report; });
  }
}

}  // namespace

SetCandidate::SetCandidate(std::string path, std::string layout, std::string dir,
                           std::int64_t mtime_ns, std::int64_t step,
                           std::function<SetReport()> judge)
    : path_(std::move(path)),
      layout_(std::move(layout)),
      dir_(std::move(dir)),
      mtime_ns_(mtime_ns),
      step_(step),
      judge_(std::move(judge)) {}

const SetReport& SetCandidate::Check() const {
  if (!report_) {
    report_ = std::make_shared<SetReport>(judge_());
    if (report_->mtime_ns == 0) report_->mtime_ns = mtime_ns_;
    if (report_->step < 0) report_->step = step_;
  }
  return *report_;
}

FoundSets FindSets(const std::string& path, bool recursive, const SetCheckOptions& options,
                   std::string* err, std::optional<int> depth) {
  FoundSets found;
  found.options = options;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return found;  // the per-file path reports it
  const bool is_dir = S_ISDIR(st.st_mode);
  const std::string root_path = is_dir ? path : ParentOf(path);
  std::optional<SetDir> root = SetDir::Open(root_path, err);
  if (!root) return found;
  ParentPointers parent;
  if (std::optional<SetDir> up = SetDir::Open(root_path + "/..", err))
    parent = ReadParentPointers(*up);
  err->clear();

  struct Todo {
    std::shared_ptr<SetDir> dir;
    std::string name;
    ParentPointers parent;
    int depth;
  };
  std::deque<Todo> todo;
  todo.push_back({std::make_shared<SetDir>(std::move(*root)), BaseName(root_path), parent, 0});
  const int max_depth = depth ? *depth : !is_dir ? 0 : recursive ? 64 : 1;
  while (!todo.empty() && found.dirs.size() < kMaxDirs) {
    Todo t = std::move(todo.front());
    todo.pop_front();
    found.dirs.push_back(t.dir->path());
    std::vector<std::string> consumed;
    Recognise(t.dir, t.name, t.parent, options, &found, &consumed);
    if (t.depth >= max_depth) continue;
    const ParentPointers here = ReadParentPointers(*t.dir);
    for (const std::string& sub : t.dir->Subdirs()) {
      if (std::find(consumed.begin(), consumed.end(), sub) != consumed.end()) continue;
      if (std::optional<SetDir> child = t.dir->OpenChild(sub))
        todo.push_back({std::make_shared<SetDir>(std::move(*child)), sub, here, t.depth + 1});
    }
  }
  return found;
}

void SortNewestFirst(std::vector<const SetCandidate*>* sets) {
  std::stable_sort(sets->begin(), sets->end(), [](const SetCandidate* a, const SetCandidate* b) {
    if (a->mtime_ns() != b->mtime_ns()) return a->mtime_ns() > b->mtime_ns();
    return a->step() > b->step();
  });
}

std::vector<PointerReport> JudgePointers(const FoundSets& found) {
  std::vector<PointerReport> out;
  std::vector<FoundSets> extra;  // targets not among `found`: recognised on demand, kept alive here
  extra.reserve(found.pointers.size());
  for (const ResumePointer& p : found.pointers) {
    PointerReport r{p.path, p.kind, p.target, "ok", "", ""};
    const SetCandidate* target = nullptr;
    for (const SetCandidate& s : found.sets)
      if (s.path() == p.target) target = &s;
    struct stat dir_st;
    if (!target && !p.outside && stat(p.target.c_str(), &dir_st) == 0 && S_ISDIR(dir_st.st_mode)) {
      std::string err;
      extra.push_back(FindSets(p.target, false, found.options, &err, /*depth=*/0));
      for (const SetCandidate& s : extra.back().sets)
        if (s.dir() == extra.back().dirs.front()) target = &s;
    }
    struct stat st;
    const std::string name = p.kind == "symlink" ? p.text : BaseName(p.target);
    if (target) {
      const SetReport& report = target->Check();
      if (report.ok()) {
        out.push_back(r);
        continue;
      }
      r.verdict = SetVerdictName(report.verdict);
      r.reason = "names " + name + ", which is " + r.verdict + " (" + report.reason + ")";
    } else if (p.kind == "symlink" && !p.outside && stat(p.target.c_str(), &st) == 0 &&
               S_ISREG(st.st_mode)) {
      out.push_back(r);  // a link to a single file: that file is verified as one
      continue;
    } else if (p.outside) {
      r.verdict = stat(p.target.c_str(), &st) == 0 ? "unrecognized" : "missing";
      r.reason = "names " + p.text + ", outside its directory" +
                 (r.verdict == "missing" ? ", which does not exist here" : " (not followed)");
    } else {
      const bool exists =
          stat(p.target.c_str(), &st) == 0 || stat((p.target + ".index").c_str(), &st) == 0;
      r.verdict = exists ? "unrecognized" : "missing";
      r.reason =
          "names " + name +
          (exists ? ", which is no checkpoint set ckptwatch recognises" : ", which does not exist");
    }
    // The newest complete set beside the target: what a resume should be pointed at instead.
    std::vector<const SetCandidate*> beside;
    const std::string target_dir = ParentOf(p.target);
    for (const SetCandidate& s : found.sets)
      if (s.path() != p.target &&
          (ParentOf(s.path()) == target_dir || ParentOf(s.path()) == ParentOf(p.path)))
        beside.push_back(&s);
    SortNewestFirst(&beside);
    for (const SetCandidate* s : beside)
      if (s->Check().ok()) {
        r.last_complete = s->path();
        break;
      }
    const bool partial = r.verdict == "incomplete" || r.verdict == "inconsistent";
    r.reason = BaseName(p.path) + " " + r.reason + ": " +
               (partial ? "resume will load a partial checkpoint or fail" : "resume will fail") +
               (r.last_complete.empty() ? "; no complete checkpoint beside it"
                                        : "; the last complete one is " + r.last_complete);
    out.push_back(r);
  }
  return out;
}

}  // namespace ckptwatch
