#include "verify/sets/set_finder.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>

#include "verify/sets/dcp_set.h"
#include "verify/sets/deepspeed_set.h"
#include "verify/sets/hf_sharded_set.h"
#include "verify/sets/keras_sharded_set.h"
#include "verify/sets/megatron_set.h"
#include "verify/sets/orbax_set.h"
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
  for (ResumePointer& p : FindResumePointers(dir, *names)) found->pointers.push_back(std::move(p));

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
  if (LooksLikeOrbax(*names)) {
    // One step is one set: its items, data and per-process stores are not sets of their own.
    for (const std::string& sub : dir->Subdirs()) consumed->push_back(sub);
    add(dir->path(), "orbax", mtime_of("_CHECKPOINT_METADATA"), step,
        [=] { return CheckOrbax(*dir, dir_name, *names); });
    return;
  }
  // Sets that share a directory, each named by its index or prefix. Judged together (a
  // directory's bundles are found by reading their indexes anyway), handed out one by one.
  std::vector<SetReport> reports = FindTfBundles(*dir, "", *names, options);
  for (SetReport& r : FindTfV1Checkpoints(*dir, *names)) reports.push_back(std::move(r));
  for (SetReport& r : FindHfSharded(*dir, *names, options)) reports.push_back(std::move(r));
  for (SetReport& r : FindKerasSharded(*dir, *names, options)) reports.push_back(std::move(r));
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

namespace {

// The sets of `root` and of its subdirectories down to `max_depth` levels (entered beneath it,
// never through a symlink); `parent` is what the directory above `root` says.
FoundSets FindSetsIn(SetDir root, const std::string& root_name, const ParentPointers& parent,
                     int max_depth, const SetCheckOptions& options) {
  FoundSets found;
  found.options = options;
  struct Todo {
    std::shared_ptr<SetDir> dir;
    std::string name;
    ParentPointers parent;
    int depth;
  };
  std::deque<Todo> todo;
  todo.push_back({std::make_shared<SetDir>(std::move(root)), root_name, parent, 0});
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

}  // namespace

FoundSets FindSets(const std::string& path, bool recursive, const SetCheckOptions& options,
                   std::string* err, std::optional<int> depth) {
  // The caller named `path` (its own symlinks are followed, as open(2) would): opened once, and
  // what it is asked of the descriptor, not of the name again.
  UniqueFd named(open(path.c_str(), O_PATH | O_CLOEXEC));
  struct stat st;
  if (!named.valid() || fstat(named.get(), &st) != 0) {
    FoundSets none;
    none.options = options;
    return none;  // the per-file path reports it
  }
  const bool is_dir = S_ISDIR(st.st_mode);
  const std::string root_path = is_dir ? path : ParentOf(path);
  std::optional<SetDir> root;
  if (is_dir) {
    UniqueFd fd(openat(named.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) *err = "cannot open directory " + path + ": " + std::strerror(errno);
    if (fd.valid()) root = SetDir::Adopt(std::move(fd), root_path);
  } else {
    root = SetDir::Open(root_path, err);
  }
  if (!root) {
    FoundSets none;
    none.options = options;
    return none;
  }
  ParentPointers parent;
  if (std::optional<SetDir> up = SetDir::Open(root_path + "/..", err))
    parent = ReadParentPointers(*up);
  err->clear();
  const int max_depth = depth ? *depth : !is_dir ? 0 : recursive ? 64 : 1;
  return FindSetsIn(std::move(*root), BaseName(root_path), parent, max_depth, options);
}

FoundSets FindSetsBeneath(int root_fd, const std::string& root_path, const std::string& relative,
                          const SetCheckOptions& options, std::string* err, int depth) {
  FoundSets none;
  none.options = options;
  UniqueFd own(openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!own.valid()) {
    *err = "cannot open directory " + root_path + ": " + std::strerror(errno);
    return none;
  }
  std::optional<SetDir> root = SetDir::Adopt(std::move(own), root_path);
  if (relative.empty()) return FindSetsIn(std::move(*root), BaseName(root_path), {}, depth, options);
  const std::string up = ParentOf(relative);
  std::optional<SetDir> parent = up == "." ? std::nullopt : root->OpenChild(up);
  if (up != "." && !parent) return none;
  const SetDir& above = parent ? *parent : *root;
  std::optional<SetDir> dir = above.OpenChild(BaseName(relative));
  if (!dir) {
    *err = "cannot open directory " + root->Join(relative) + " beneath its watch: " +
           std::strerror(errno);
    return none;
  }
  return FindSetsIn(std::move(*dir), BaseName(relative), ReadParentPointers(above), depth, options);
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
    // Inside targets are resolved beneath the pointer's directory, no symlink followed; of an
    // outside one nothing is looked at (not even whether it exists: that would tell whoever
    // wrote the pointer about a path they may not be able to see).
    const MemberStat at = p.outside ? MemberStat{} : p.dir->Stat(p.relative);
    if (!target && !p.outside && at.kind == EntryKind::kNotRegular && at.is_dir) {
      if (std::optional<SetDir> child = p.dir->OpenChild(p.relative)) {
        const std::string dir_path = child->path();
        extra.push_back(FindSetsIn(std::move(*child), BaseName(p.relative),
                                   ReadParentPointers(*p.dir), 0, found.options));
        for (const SetCandidate& s : extra.back().sets)
          if (s.dir() == dir_path) target = &s;
      }
    }
    const std::string name = p.kind == "symlink" ? p.text : BaseName(p.target);
    if (target) {
      const SetReport& report = target->Check();
      if (report.ok()) {
        out.push_back(r);
        continue;
      }
      r.verdict = SetVerdictName(report.verdict);
      r.reason = "names " + name + ", which is " + r.verdict + " (" + report.reason + ")";
    } else if (p.kind == "symlink" && !p.outside && at.kind == EntryKind::kRegular) {
      out.push_back(r);  // a link to a single file: that file is verified as one
      continue;
    } else if (p.outside) {
      r.verdict = "unrecognized";
      r.reason = "names " + p.text + ", outside the checkpoint directory, not followed";
    } else if (at.kind == EntryKind::kSymlink) {
      r.verdict = "unrecognized";
      r.reason = "names " + name + ", which is a symlink (not followed)";
    } else {
      const bool exists = at.kind != EntryKind::kMissing ||
                          p.dir->Stat(p.relative + ".index").kind != EntryKind::kMissing;
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
