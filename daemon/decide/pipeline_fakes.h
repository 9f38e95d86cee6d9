// Test doubles for the pipeline's seams: an in-memory filesystem with a clock
// the test advances (ninja's VirtualFileSystem + Tick()), a watcher that
// records what it was asked to watch (watchman's FakeWatcher), a scanner and a
// verifier whose work the test completes, and a reporter that records every
// log line and metric. Only the pipeline tests use them.
#pragma once

#include <sys/stat.h>

#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "decide/env.h"
#include "decide/pipeline_ports.h"

namespace ckptwatch::testing {

class FakeEnv : public Env {
 public:
  struct File {
    EntryKind kind = EntryKind::kRegular;  // kRegular, kNotRegular or kSymlink
    FileStat stat;
    mode_t mode = S_IFREG;
    std::string link_text;
    LinkTarget link = LinkTarget::kOutside;
  };

  // ---- the clock
  Clock::time_point Now() const override { return now_; }
  double UnixNow() const override { return 1.8e9 + Seconds(); }
  std::int64_t RealtimeNs() const override { return 1'800'000'000'000'000'000LL + Nanos(); }
  void Advance(std::chrono::milliseconds d) { now_ += d; }

  // ---- the tree
  void MakeDir(const std::string& path) { dirs_.insert(path); }
  void RemoveDir(const std::string& path) {
    std::erase_if(dirs_, [&](const std::string& d) { return Within(d, path); });
    std::erase_if(files_, [&](const auto& f) { return Within(f.first, path); });
  }
  /// Creates or rewrites `path` in place (same inode), mtime now.
  void Write(const std::string& path, std::uint64_t size) {
    File& f = files_[path];
    if (f.stat.ino == 0) f.stat.ino = ++next_inode_;
    f.kind = EntryKind::kRegular;
    f.mode = S_IFREG;
    f.stat.size = size;
    f.stat.mtime_ns = RealtimeNs();
  }
  /// Replaces `path` by a rename (a new inode).
  void Replace(const std::string& path, std::uint64_t size) {
    files_.erase(path);
    Write(path, size);
  }
  void Remove(const std::string& path) { files_.erase(path); }
  void Rename(const std::string& from, const std::string& to) {
    auto node = files_.extract(from);
    node.key() = to;
    files_.insert(std::move(node));
  }
  void MakeSpecial(const std::string& path, mode_t mode) {
    File& f = files_[path];
    f.kind = EntryKind::kNotRegular;
    f.mode = mode;
    f.stat = {0, RealtimeNs(), ++next_inode_};
  }
  void MakeSymlink(const std::string& path, const std::string& text, LinkTarget where) {
    File& f = files_[path];
    f.kind = EntryKind::kSymlink;
    f.link_text = text;
    f.link = where;
  }
  /// A directory swapped for a symlink: everything below it is out of reach.
  void MakeSymlinkedDir(const std::string& path) { symlinked_dirs_.insert(path); }
  /// A symlink owned by someone other than root at a watch root: not followed.
  void MakeUntrustedSymlinkRoot(const std::string& path) { untrusted_.insert(path); }
  const std::map<std::string, File>& files() const { return files_; }
  bool HasDir(const std::string& path) const { return dirs_.count(path) > 0; }

  // ---- what the daemon's checks see
  FsSpace space{std::uint64_t{500} << 30, std::uint64_t{1} << 40};
  mutable int space_looks = 0;  // SpaceForFile() calls
  bool network = false;
  std::map<std::string, std::string> unreadable_by;  // path -> why readers cannot read it
  std::string writer_cannot_create;
  std::map<std::string, std::string> open_for_writing;  // path -> who holds it
  OpenWriters writers_visible = OpenWriters::kNone;       // kUnknown: /proc hidden

  // ---- Env
  bool OpenRoot(const std::string& watch, const std::string& path, std::string* err, int* error) override {
    if (untrusted_.count(path)) {
      *err = path + " is a symlink owned by uid 1000, not root: not followed";
      *error = ELOOP;
      return false;
    }
    if (!dirs_.count(path)) {
      *err = path + ": No such file or directory";
      *error = ENOENT;
      return false;
    }
    roots_[watch] = path;
    return true;
  }
  void CloseRoot(const std::string& watch) override { roots_.erase(watch); }
  bool RootDeleted(const std::string& watch) const override {
    auto it = roots_.find(watch);
    return it != roots_.end() && !dirs_.count(it->second);
  }
  EntryInfo Probe(const std::string& watch, const std::string& relative) const override {
    EntryInfo info;
    auto root = roots_.find(watch);
    if (root == roots_.end() || relative.empty()) return info;
    const std::string path = root->second + "/" + relative;
    for (const std::string& link : symlinked_dirs_)
      if (Within(path, link) && path != link) return {EntryKind::kSymlinkInPath, {}, 0};
    if (dirs_.count(path)) return {EntryKind::kNotRegular, {0, 0, 1}, S_IFDIR};
    auto f = files_.find(path);
    if (f == files_.end()) return info;
    info.kind = f->second.kind;
    info.stat = f->second.stat;
    info.mode = f->second.mode;
    return info;
  }
  LinkTarget ResolveSymlink(const std::string& watch, const std::string& relative,
                            std::string* text) const override {
    auto f = files_.find(roots_.at(watch) + "/" + relative);
    if (f == files_.end()) return LinkTarget::kDangling;
    *text = f->second.link_text;
    return f->second.link;
  }
  OpenWriters WritersOf(const std::string& watch, const std::string& relative, Clock::time_point,
                        std::string* who) const override {
    auto it = open_for_writing.find(roots_.at(watch) + "/" + relative);
    if (it == open_for_writing.end()) return writers_visible;
    *who = it->second;
    return OpenWriters::kSome;
  }
  bool IsTrustedDirectory(const std::string& path) const override {
    return dirs_.count(path) > 0 && !untrusted_.count(path);
  }
  bool IsNetworkFilesystem(const std::string&, std::string* fs_name) const override {
    *fs_name = network ? "nfs" : "ext4";
    return network;
  }
  bool StatSpace(const std::string&, FsSpace* out) const override {
    *out = space;
    return true;
  }
  bool SpaceForFile(const std::string&, const std::string&, FsSpace* out) const override {
    ++space_looks;
    *out = space;
    return true;
  }
  std::string WhyCannotRead(const std::string& path, const Principal&) const override {
    auto it = unreadable_by.find(path);
    return it == unreadable_by.end() ? "" : it->second;
  }
  std::string WhyCannotCreateIn(const std::string&, const Principal&) const override {
    return writer_cannot_create;
  }

  /// The regular files under `root`/`relative` as a scan would list them.
  Snapshot List(const std::string& root, const std::string& relative, bool recursive) const {
    Snapshot snapshot;
    const std::string top = relative.empty() ? root : root + "/" + relative;
    for (const auto& [path, f] : files_) {
      if (f.kind != EntryKind::kRegular || !Within(path, top) || path == top) continue;
      if (!recursive && path.find('/', top.size() + 1) != std::string::npos) continue;
      snapshot.files[path] = f.stat;
    }
    return snapshot;
  }

 private:
  static bool Within(const std::string& path, const std::string& dir) {
    return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                           path[dir.size()] == '/');
  }
  double Seconds() const { return std::chrono::duration<double>(now_.time_since_epoch()).count(); }
  std::int64_t Nanos() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(now_.time_since_epoch()).count();
  }

  Clock::time_point now_ = Clock::time_point(std::chrono::hours(24));
  std::set<std::string> dirs_;
  std::set<std::string> symlinked_dirs_;
  std::set<std::string> untrusted_;
  std::map<std::string, File> files_;
  std::map<std::string, std::string> roots_;  // watch -> path
  std::uint64_t next_inode_ = 100;
};

class FakeWatcher : public Watcher {
 public:
  struct Added {
    std::string path;
    bool recursive;
  };
  int AddWatch(const std::string& root, bool recursive, WatchError* err) override {
    if (fail_with != 0) {
      err->error = fail_with;
      err->message = "cannot watch " + root;
      return -1;
    }
    watches[next_id] = {root, recursive};
    return next_id++;
  }
  void RemoveWatch(int id) override {
    watches.erase(id);
    removed.push_back(id);
  }
  /// The id watching `path`, or -1.
  int IdOf(const std::string& path) const {
    for (const auto& [id, added] : watches)
      if (added.path == path) return id;
    return -1;
  }
  std::map<int, Added> watches;
  std::vector<int> removed;
  int fail_with = 0;
  int next_id = 1;
};

class FakeScanner : public Scanner {
 public:
  void Scan(ScanRequest request) override { requests.push_back(std::move(request)); }
  std::vector<ScanRequest> requests;
};

class FakeVerifier : public Verifier {
 public:
  bool Full() const override { return jobs.size() >= capacity; }
  bool Enqueue(VerifyJob job) override {
    if (jobs.size() >= capacity) return false;
    jobs.push_back(std::move(job));
    return true;
  }
  void DropWatch(const std::string& watch) override { dropped.push_back(watch); }
  std::size_t waiting() const override { return jobs.size(); }
  std::size_t running() const override { return 0; }
  std::vector<VerifyJob> jobs;  // not yet answered
  std::vector<std::string> dropped;
  std::size_t capacity = 1000;
};

// Records the judgements of checkpoint sets asked for; the test answers them (Answer...),
// in any order, or never.
class FakeSetJudge : public SetJudge {
 public:
  void Judge(SetJudgeRequest request) override { requests.push_back(std::move(request)); }
  std::vector<SetJudgeRequest> requests;  // not yet answered
};

// Records every event the pipeline reports, in order (`events`), and keeps the state the
// metrics would show (verified, failures, failing, ...) from them, so that tests assert on
// events, never on how report/ renders them.
class FakeReporter : public Reporter {
 public:
  /// A line-only event (Logged) or a verdict's line, with its fields by key.
  struct Line {
    LogLevel level;
    LogEvent event;
    std::map<std::string, std::string> fields;
    std::string msg;
  };
  void Report(PipelineEvent event) override {
    std::visit([this](const auto& e) { Record(e); }, event);
    events.push_back(std::move(event));
  }

  static std::string Key(const std::string& watch, const std::string& run) {
    return run.empty() ? watch : watch + "/" + run;
  }
  /// Lines of `event` (Logged events, and the `verify` lines of verdicts), in order.
  std::vector<Line> Events(LogEvent event) const {
    std::vector<Line> out;
    for (const Line& l : lines)
      if (l.event == event) out.push_back(l);
    return out;
  }
  /// Every reported event of type T, in order.
  template <typename T>
  std::vector<T> Of() const {
    std::vector<T> out;
    for (const PipelineEvent& e : events)
      if (const T* t = std::get_if<T>(&e)) out.push_back(*t);
    return out;
  }
  /// Problems that started (`started`) or ended, in order.
  std::vector<ProblemChanged> Problems(bool started) const {
    std::vector<ProblemChanged> out;
    const auto want = started ? ProblemChanged::Change::kStarted : ProblemChanged::Change::kCleared;
    for (const ProblemChanged& p : Of<ProblemChanged>())
      if (p.change == want) out.push_back(p);
    return out;
  }
  /// Runs removed because max_runs was exceeded, in order.
  std::vector<RunRemoved> Expired() const {
    std::vector<RunRemoved> out;
    for (const RunRemoved& r : Of<RunRemoved>())
      if (r.expired_for) out.push_back(r);
    return out;
  }
  /// Rescans that report what they found (overflow, poll after queue_full, ...), in order.
  std::vector<Rescanned> RescanLines() const {
    std::vector<Rescanned> out;
    for (const Rescanned& r : Of<Rescanned>())
      if (r.files) out.push_back(r);
    return out;
  }
  /// True when some string an event carries contains `text`.
  bool Mentions(const std::string& text) const {
    auto has = [&](const std::string& s) { return s.find(text) != std::string::npos; };
    for (const Line& l : lines) {
      if (has(l.msg)) return true;
      for (const auto& [k, v] : l.fields)
        if (has(v)) return true;
    }
    for (const ProblemChanged& p : Of<ProblemChanged>())
      if (has(p.reason)) return true;
    for (const VerdictReached& v : Of<VerdictReached>())
      if (has(v.path) || has(v.run)) return true;
    for (const RunRemoved& r : Of<RunRemoved>())
      if (has(r.run) || has(r.expired_for.value_or(""))) return true;
    for (const RunAdded& r : Of<RunAdded>())
      if (has(r.run)) return true;
    for (const FailingFilesChanged& f : Of<FailingFilesChanged>())
      if (has(f.run)) return true;
    return false;
  }

  std::vector<PipelineEvent> events;
  std::vector<Line> lines;
  std::map<std::string, std::string> backends;
  std::vector<std::string> removed;
  std::map<std::string, int> verified, failures, rescans;
  std::map<std::string, std::size_t> failing;      ///< by "watch/cause" or "watch/run/cause"
  std::map<std::string, std::uint64_t> last_good;  ///< by "watch" or "watch/run"
  std::map<std::string, bool> last_ok;             ///< by "watch" or "watch/run"
  std::set<std::string> runs;                      ///< "watch/run" with series now
  std::vector<std::string> removed_runs;           ///< "watch/run", in order
  std::map<std::string, bool> problems;            ///< by "watch/problem"
  std::size_t queue_length = 0;
  std::map<std::string, int> sets;                 ///< by "watch/layout/verdict"
  std::map<std::string, double> last_complete;     ///< by "watch" or "watch/run"
  std::map<std::string, std::size_t> broken_pointers;  ///< by watch

 private:
  void Record(const Logged& e) {
    Line line{e.level, e.event, {}, e.message};
    for (const auto& [k, v] : e.fields) line.fields[k] = v;
    lines.push_back(std::move(line));
  }
  void Record(const VerdictReached& e) {
    if (e.line) Record(*e.line);
    ++verified[e.watch + "/" + std::string(VerdictName(e.verdict))];
    last_ok[Key(e.watch, e.run)] = e.cause.empty();
    if (e.good_unix) last_good[Key(e.watch, e.run)] = e.bytes;
    if (!e.cause.empty()) ++failures[Key(e.watch, e.run) + "/" + e.cause];
  }
  void Record(const ResumePointersBroken& e) { broken_pointers[e.watch] = e.count; }
  void Record(const CheckpointJudged& e) {
    Record(e.line);
    if (!e.pointer) ++sets[e.watch + "/" + e.layout + "/" + e.verdict];
    if (e.complete_unix) last_complete[Key(e.watch, e.run)] = *e.complete_unix;
    if (!e.cause.empty()) ++failures[Key(e.watch, e.run) + "/" + e.cause];
  }
  void Record(const LastGoodRestored& e) { last_good[Key(e.watch, e.run)] = e.bytes; }
  void Record(const ProblemChanged& e) {
    problems[e.watch + "/" + std::string(WatchProblemName(e.problem))] = e.active;
  }
  void Record(const WatchBackendChanged& e) { backends[e.watch] = e.backend; }
  void Record(const WatchRemoved& e) { removed.push_back(e.watch); }
  void Record(const FailingFilesChanged& e) {
    failing[Key(e.watch, e.run) + "/" + e.cause] = e.count;
  }
  void Record(const RunAdded& e) { runs.insert(Key(e.watch, e.run)); }
  void Record(const RunRemoved& e) {
    runs.erase(Key(e.watch, e.run));
    removed_runs.push_back(Key(e.watch, e.run));
  }
  void Record(const Rescanned& e) {
    ++rescans[e.watch + "/" + std::string(ScanReasonName(e.reason))];
  }
  void Record(const FilesystemSpace&) {}
  void Record(const QueueLengthChanged& e) { queue_length = e.length; }
};

}  // namespace ckptwatch::testing
