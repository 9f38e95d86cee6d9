#include "daemon.h"

#include <fnmatch.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "access_check.h"
#include "event_log.h"
#include "hdf5_inspector.h"
#include "inotify_watcher.h"
#include "metrics.h"
#include "missing_watch.h"
#include "poll_scanner.h"
#include "problem_set.h"
#include "save_cause.h"
#include "settle_queue.h"
#include "systemd_notify.h"
#include "open_beneath.h"
#include "unique_fd.h"
#include "verify_queue.h"
#include "watch_root.h"

namespace ckptwatch {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

// Housekeeping period (redis's serverCron): polling, missing watches,
// summaries, the systemd watchdog.
constexpr milliseconds kTick{1000};
// How long SIGTERM waits for running verifications before killing them.
constexpr std::uint64_t kStopGraceMs = 5000;
// How long an empty file gets to start growing before it is a failed save.
constexpr milliseconds kEmptyRecheck{2000};
// Pending + in-flight paths per watch before a burst turns into a rescan.
constexpr std::size_t kMaxPendingPerWatch = 100000;

std::int64_t RealtimeNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

FileStat ToFileStat(const struct stat& st) {
  return FileStat{static_cast<std::uint64_t>(st.st_size),
                  st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                  static_cast<std::uint64_t>(st.st_ino)};
}

double UnixNow() {
  return duration_cast<std::chrono::duration<double>>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Basename(const std::string& path) {
  std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Hidden names never match: atomic writers stage `.x.h5.XYZ` and rename.
bool MatchesPatterns(const std::vector<std::string>& patterns, const std::string& path) {
  const std::string name = Basename(path);
  for (const std::string& pattern : patterns)
    if (fnmatch(pattern.c_str(), name.c_str(), FNM_PERIOD) == 0) return true;
  return false;
}

std::string HumanDuration(double seconds) {
  char text[32];
  if (seconds < 120) std::snprintf(text, sizeof text, "%.0fs", seconds);
  else if (seconds < 7200) std::snprintf(text, sizeof text, "%.0fm", seconds / 60);
  else std::snprintf(text, sizeof text, "%.1fh", seconds / 3600);
  return text;
}

class Daemon {
 public:
  Daemon(Config config, std::string config_path, std::unique_ptr<EventLog> log)
      : config_(std::move(config)), config_path_(std::move(config_path)), log_(std::move(log)) {}
  int Run();

 private:
  struct Watch {
    WatchConfig config;
    // The root directory as found at start (watch_root.h): every file is
    // opened and stat'ed beneath it, never by its path, so a directory on the
    // way swapped for a symlink leads nowhere. Shared with running scans.
    std::shared_ptr<UniqueFd> root;
    // Symlinks already reported (path -> target), so each is said once.
    std::map<std::string, std::string> links_reported;
    enum class State { kActive, kMissing } state = State::kActive;
    bool polling = false;
    std::string fs_name;
    int inotify_id = -1;
    std::optional<MissingWatch> missing;
    int missing_id = -1;
    std::unique_ptr<SettleQueue> settle;
    std::unique_ptr<PollScanner> poller;
    Clock::time_point next_poll;
    bool scan_running = false;
    bool baseline_done = false;
    bool verify_all_on_start = false;  // a directory that just appeared: all of it is new
    Snapshot known;  // what the last scan saw, plus files dispatched since
    std::uint64_t ok_total = 0, failed_total = 0;
    std::optional<double> last_good_time;
    std::uint64_t last_good_bytes = 0;
    std::string last_good_path;
    Clock::time_point next_summary;
    ProblemSet problems;
    std::optional<StaleClock> stale;
    std::map<std::string, int> in_progress_seen;  // path -> consecutive in_progress verdicts
    // What a file looked like when its verification was dispatched, and when
    // the write event that triggered it arrived (CLOCK_REALTIME ns).
    struct Dispatched {
      std::optional<FileStat> stat;
      std::int64_t event_ns = 0;
    };
    std::map<std::string, Dispatched> dispatched;
    std::map<std::string, std::int64_t> last_event_ns;
    // The version each path had when its last verdict was reported: a
    // close-write with no write in between (HDF5 opens O_RDWR and closes a file
    // before truncating it) is not a new checkpoint.
    std::map<std::string, FileStat> reported;
    Clock::time_point next_writable_check;
  };
  struct ScanWork;

  // Setup and teardown.
  bool Setup();
  void StartWatch(Watch& w);
  void StopWatch(Watch& w);
  void GoMissing(Watch& w, const std::string& why, bool untrusted = false);
  void WatchAncestor(Watch& w);
  void Recovered(Watch& w);
  void Stop(const char* signal_name);
  void CloseHandles();
  void Reload();
  void ApplyVerifyConfig();

  // Events.
  void OnInotifyReadable();
  void HandleEvent(const WatchEvent& event);
  void HandleMissingEvent(Watch& w, const WatchEvent& event);
  void Touch(Watch& w, const std::string& path, Clock::time_point now);
  void OnFileEvent(Watch& w, const std::string& path, Clock::time_point now);
  void ReportSymlink(Watch& w, const std::string& path, const std::string& relative);
  std::optional<FileStat> StatBeneath(const Watch& w, const std::string& path) const;
  void ScheduleScan(Watch& w, std::string reason);
  void OnScanDone(ScanWork* work);
  void ArmSettleTimer();
  void OnSettleTimer();
  void Dispatch(Watch& w, const std::string& path);
  void OnVerified(const VerifyJob& job, const VerifyResult& result);
  void OnTick();
  void Summary(Watch& w);
  void SetProblem(Watch& w, const std::string& problem, bool active, const std::string& reason = "");
  void CheckWritable(Watch& w);
  void CheckSpace(Watch& w);

  Watch* FindWatch(const std::string& name);
  Watch* FindByInotifyId(int id);
  void Log(LogLevel level, std::string_view event, std::vector<LogField> fields, std::string msg = "") {
    log_->Write(level, event, std::move(fields), std::move(msg));
  }
  std::string Status() const;

  Config config_;
  std::string config_path_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<Metrics> metrics_;
  uv_loop_t loop_{};
  uv_signal_t sig_hup_{}, sig_term_{}, sig_int_{}, sig_usr1_{};
  uv_poll_t inotify_poll_{};
  bool inotify_poll_active_ = false;
  uv_timer_t settle_timer_{}, tick_timer_{};
  std::unique_ptr<InotifyWatcher> inotify_;
  std::unique_ptr<VerifyQueue> queue_;
  std::map<std::string, std::unique_ptr<Watch>> watches_;
  std::optional<std::chrono::microseconds> watchdog_;
  Clock::time_point next_watchdog_;
  int pending_scans_ = 0;
  bool stopping_ = false;
  int exit_code_ = 0;
};

struct Daemon::ScanWork {
  uv_work_t request{};
  Daemon* daemon = nullptr;
  std::string watch;
  std::string root;
  std::shared_ptr<UniqueFd> root_fd;  // the watch root, kept open while this runs
  std::string watch_path;
  bool recursive = true;
  std::vector<std::string> patterns;
  std::string reason;
  Snapshot snapshot;
  bool ok = false;
  std::string error;
  int error_code = 0;
};

Daemon::Watch* Daemon::FindWatch(const std::string& name) {
  auto it = watches_.find(name);
  return it == watches_.end() ? nullptr : it->second.get();
}

Daemon::Watch* Daemon::FindByInotifyId(int id) {
  for (auto& [name, w] : watches_)
    if (w->inotify_id == id || w->missing_id == id) return w.get();
  return nullptr;
}

std::string Daemon::Status() const {
  std::size_t active = 0, missing = 0;
  for (const auto& [name, w] : watches_) (w->state == Watch::State::kActive ? active : missing)++;
  return "watching " + std::to_string(active) + " director" + (active == 1 ? "y" : "ies") +
         (missing ? ", " + std::to_string(missing) + " missing" : "") + "; " +
         std::to_string(queue_ ? queue_->running() : 0) + " verifying, " +
         std::to_string(queue_ ? queue_->waiting() : 0) + " queued";
}

// ---- setup -----------------------------------------------------------------

bool Daemon::Setup() {
  std::string err;
  metrics_ = Metrics::Start(config_.metrics, &err);
  if (!metrics_) {
    Log(LogLevel::kError, "start_failed", {{"listen", config_.metrics.listen}}, err);
    exit_code_ = 2;
    return false;
  }
  metrics_->SetBuildInfo(CKPTWATCH_VERSION, Hdf5LibraryVersion());
  metrics_->ConfigReloaded(true, UnixNow());
  Log(LogLevel::kInfo, "start",
      {{"version", CKPTWATCH_VERSION}, {"hdf5_version", Hdf5LibraryVersion()},
       {"pid", std::to_string(getpid())}, {"metrics", config_.metrics.listen}});
  Log(LogLevel::kInfo, "config_loaded",
      {{"source", config_.source.empty() ? "embedded default" : config_.source},
       {"watches", std::to_string(config_.watches.size())}});

  WatchError watch_error;
  inotify_ = InotifyWatcher::Create(&watch_error);
  if (!inotify_) {
    // Every watch polls instead; say so once.
    Log(LogLevel::kError, "backend_fallback", {{"backend", "poll"}}, watch_error.message);
  } else {
    uv_poll_init(&loop_, &inotify_poll_, inotify_->fd());
    inotify_poll_.data = this;
    uv_poll_start(&inotify_poll_, UV_READABLE, [](uv_poll_t* handle, int status, int) {
      if (status == 0) static_cast<Daemon*>(handle->data)->OnInotifyReadable();
    });
    inotify_poll_active_ = true;
  }

  queue_ = std::make_unique<VerifyQueue>(
      &loop_, SelfExecutable(), static_cast<std::size_t>(config_.verify.max_parallel),
      ChildLimits{}, static_cast<std::size_t>(config_.verify.queue_limit),
      [this](const VerifyJob& job, const VerifyResult& result) { OnVerified(job, result); });
  ApplyVerifyConfig();

  for (const WatchConfig& wc : config_.watches) {
    auto w = std::make_unique<Watch>();
    w->config = wc;
    Watch& ref = *w;
    watches_[wc.name] = std::move(w);
    StartWatch(ref);
  }
  watchdog_ = WatchdogInterval();
  NotifyReady(Status());
  return true;
}

void Daemon::ApplyVerifyConfig() {
  ChildLimits limits;
  limits.timeout_seconds = static_cast<double>(config_.verify.timeout.count()) / 1000.0;
  limits.memory_bytes = config_.verify.memory_limit;
  queue_->Reconfigure(static_cast<std::size_t>(config_.verify.max_parallel), limits,
                      static_cast<std::size_t>(config_.verify.queue_limit));
}

void Daemon::StartWatch(Watch& w) {
  const WatchConfig& c = w.config;
  if (!w.settle) w.settle = std::make_unique<SettleQueue>(c.settle, kMaxPendingPerWatch);
  if (!c.expect_every) w.stale.reset();
  else if (!w.stale) w.stale.emplace(*c.expect_every, Clock::now());
  else w.stale->set_expect_every(*c.expect_every);
  UniqueFd root;
  std::string root_error;
  int root_errno = 0;
  if (!OpenWatchRoot(c.path, &root, &root_error, &root_errno)) {
    GoMissing(w, root_error, root_errno == ELOOP);
    return;
  }
  w.root = std::make_shared<UniqueFd>(std::move(root));
  w.state = Watch::State::kActive;
  std::string fs_name;
  bool network = IsNetworkFilesystem(c.path, &fs_name);
  w.fs_name = fs_name;
  w.polling = c.backend == WatchBackend::kPoll || (c.backend == WatchBackend::kAuto && network) ||
              !inotify_;
  if (!w.polling) {
    WatchError err;
    w.inotify_id = inotify_->AddWatch(c.path, c.recursive, &err);
    if (w.inotify_id < 0) {
      if (err.error == ENOENT) {
        GoMissing(w, err.message);
        return;
      }
      Log(LogLevel::kError, "backend_fallback", {{"watch", c.name}, {"path", c.path}, {"backend", "poll"}},
          err.message);
      w.polling = true;
    }
  }
  if (w.polling) {
    w.poller = std::make_unique<PollScanner>(c.settle);
    w.next_poll = Clock::now() + c.poll_interval;
  }
  w.baseline_done = false;
  metrics_->AddWatch(c.name, c.path, w.polling ? "poll" : "inotify");
  SetProblem(w, "missing_directory", false);
  CheckWritable(w);
  CheckSpace(w);
  Log(LogLevel::kInfo, "watch_started",
      {{"watch", c.name}, {"path", c.path}, {"backend", w.polling ? "poll" : "inotify"},
       {"fs", fs_name}, {"recursive", c.recursive ? "true" : "false"},
       {"verify_level", std::string(LevelName(c.level))}},
      c.backend == WatchBackend::kAuto
          ? (network ? "network filesystem: polling, inotify cannot see other clients' writes"
                     : "local filesystem: inotify")
          : "");
  ScheduleScan(w, "start");
}

void Daemon::StopWatch(Watch& w) {
  if (inotify_) {
    if (w.inotify_id >= 0) inotify_->RemoveWatch(w.inotify_id);
    if (w.missing_id >= 0) inotify_->RemoveWatch(w.missing_id);
  }
  w.inotify_id = w.missing_id = -1;
  w.poller.reset();
  w.root.reset();  // a running scan keeps its own reference
}

void Daemon::GoMissing(Watch& w, const std::string& why, bool untrusted) {
  StopWatch(w);
  w.state = Watch::State::kMissing;
  w.missing.emplace(w.config.path);
  metrics_->AddWatch(w.config.name, w.config.path, "none");
  // A symlink someone other than root put where the root should be is not
  // followed (watch_root.h): the watch waits, as for a missing directory,
  // until a real directory is there.
  const std::string what = untrusted ? "is not a directory ckptwatch follows" : "does not exist";
  SetProblem(w, "missing_directory", true, w.config.path + " " + what + " (" + why + ")");
  Log(LogLevel::kWarn, "watch_missing",
      {{"watch", w.config.name}, {"path", w.config.path}, {"waiting_on", w.missing->ancestor()}},
      "checkpoint directory " + what + " (" + why +
          "): a save into it fails with OSError [Errno 2]; watching " + w.missing->ancestor() +
          " until it appears");
  WatchAncestor(w);
}

void Daemon::WatchAncestor(Watch& w) {
  // Walk down as far as the path already exists; a watch on the deepest
  // existing ancestor sees the next component appear.
  for (int guard = 0; guard < 64; ++guard) {
    MissingWatch::Step step = w.missing->Refresh();
    if (step == MissingWatch::Step::kExists) return Recovered(w);
    if (inotify_ && w.missing_id >= 0) inotify_->RemoveWatch(w.missing_id);
    w.missing_id = -1;
    if (!inotify_) return;  // the tick's Refresh() notices instead
    WatchError err;
    w.missing_id = inotify_->AddWatch(w.missing->ancestor(), false, &err);
    if (w.missing_id >= 0 && w.missing->Refresh() == MissingWatch::Step::kWait) return;
    if (w.missing_id < 0) return;  // raced with a deletion: the tick retries
  }
}

void Daemon::Recovered(Watch& w) {
  if (inotify_ && w.missing_id >= 0) inotify_->RemoveWatch(w.missing_id);
  w.missing_id = -1;
  w.missing.reset();
  Log(LogLevel::kInfo, "watch_recovered", {{"watch", w.config.name}, {"path", w.config.path}},
      "checkpoint directory exists now; watching it");
  w.known.files.clear();
  w.verify_all_on_start = true;
  metrics_->Rescanned(w.config.name, "recovered");
  StartWatch(w);
}

// ---- events ----------------------------------------------------------------

void Daemon::OnInotifyReadable() {
  std::vector<WatchEvent> events;
  inotify_->ReadEvents(&events);
  for (const WatchEvent& event : events) HandleEvent(event);
  ArmSettleTimer();
}

void Daemon::HandleEvent(const WatchEvent& event) {
  Watch* w = FindByInotifyId(event.watch_id);
  if (!w) return;
  if (w->state == Watch::State::kMissing) return HandleMissingEvent(*w, event);
  const Clock::time_point now = Clock::now();
  switch (event.kind) {
    case WatchEvent::Kind::kFileWritten:
      if (MatchesPatterns(w->config.patterns, event.path)) OnFileEvent(*w, event.path, now);
      break;
    case WatchEvent::Kind::kDirectoryCreated:
      // A directory named like a checkpoint is a failed or foreign save: say so.
      if (MatchesPatterns(w->config.patterns, event.path)) OnFileEvent(*w, event.path, now);
      // Files written before the new directory's watch existed made no event.
      ScheduleScan(*w, "new_directory:" + event.path);
      break;
    case WatchEvent::Kind::kDirectoryGone:
      if (event.path == w->config.path) GoMissing(*w, "it was deleted or moved away");
      break;
    case WatchEvent::Kind::kOverflow:
      Log(LogLevel::kWarn, "overflow", {{"watch", w->config.name}}, event.reason);
      ScheduleScan(*w, "overflow");
      break;
    case WatchEvent::Kind::kWatchFailed:
      Log(LogLevel::kError, "watch_failed", {{"watch", w->config.name}, {"path", event.path}},
          event.reason);
      ScheduleScan(*w, "watch_failed");
      break;
    case WatchEvent::Kind::kAttributesChanged:
      // A chmod/chown of the watch directory may make or unmake the writer's access.
      if (event.path == w->config.path) CheckWritable(*w);
      break;
  }
}

void Daemon::HandleMissingEvent(Watch& w, const WatchEvent& event) {
  MissingWatch::Step step = MissingWatch::Step::kWait;
  if (event.kind == WatchEvent::Kind::kDirectoryCreated || event.kind == WatchEvent::Kind::kFileWritten)
    step = w.missing->OnEntry(event.path);
  else
    step = w.missing->Refresh();
  if (step == MissingWatch::Step::kExists) return Recovered(w);
  if (step == MissingWatch::Step::kMoveWatch || event.kind == WatchEvent::Kind::kDirectoryGone ||
      event.kind == WatchEvent::Kind::kOverflow)
    WatchAncestor(w);
}

namespace {
// `path` relative to the watch root, or "" when it is not below it.
std::string RelativeTo(const std::string& root, const std::string& path) {
  if (path.size() <= root.size() + 1 || path.compare(0, root.size(), root) != 0 ||
      path[root.size()] != '/')
    return "";
  return path.substr(root.size() + 1);
}
}  // namespace

std::optional<FileStat> Daemon::StatBeneath(const Watch& w, const std::string& path) const {
  if (!w.root) return std::nullopt;
  OpenedEntry entry = ProbeBeneath(w.root->get(), RelativeTo(w.config.path, path));
  if (entry.kind == EntryKind::kRegular || entry.kind == EntryKind::kNotRegular)
    return ToFileStat(entry.st);
  return std::nullopt;
}

// An event names a path; what is there now decides what happens. A name
// reached through a symlinked directory (an inotify watch that was swapped
// into a private directory, say) is dropped without a word: its name may be
// someone else's secret. A symlink named like a checkpoint is reported as a
// symlink, never followed.
void Daemon::OnFileEvent(Watch& w, const std::string& path, Clock::time_point now) {
  const std::string relative = RelativeTo(w.config.path, path);
  if (relative.empty() || !w.root) return;
  OpenedEntry entry = ProbeBeneath(w.root->get(), relative);
  switch (entry.kind) {
    case EntryKind::kRegular:
    case EntryKind::kNotRegular:
    case EntryKind::kDenied:
    case EntryKind::kError:
      return Touch(w, path, now);
    case EntryKind::kSymlink:
      return ReportSymlink(w, path, relative);
    case EntryKind::kMissing:        // gone already (a temporary name)
    case EntryKind::kSymlinkInPath:  // not beneath the root any more
      return;
  }
}

void Daemon::ReportSymlink(Watch& w, const std::string& path, const std::string& relative) {
  std::string target;
  const LinkTarget where = ResolveLink(w.root->get(), relative, &target);
  auto said = w.links_reported.find(path);
  if (said != w.links_reported.end() && said->second == target) return;
  w.links_reported[path] = target;
  switch (where) {
    case LinkTarget::kInside:
      // Lightning's last.ckpt, a Hugging Face snapshot: the target is a file
      // of this watch and gets its own verdict.
      Log(LogLevel::kDebug, "symlink_skipped", {{"watch", w.config.name}, {"path", path}, {"target", target}},
          "symlink to a file inside the watch; that file gets its own verdict");
      break;
    case LinkTarget::kDangling:
      Log(LogLevel::kWarn, "symlink_dangling", {{"watch", w.config.name}, {"path", path}, {"target", target}},
          "symlink to a checkpoint that does not exist: the save it points to failed or was deleted");
      break;
    case LinkTarget::kOutside:
      Log(LogLevel::kWarn, "symlink_outside", {{"watch", w.config.name}, {"path", path}, {"target", target}},
          "symlink leads outside the watched directory: not followed, not verified");
      break;
  }
}

void Daemon::Touch(Watch& w, const std::string& path, Clock::time_point now) {
  // A new write means the writer made progress: an earlier in_progress was
  // that save under way, not a save stuck open.
  w.in_progress_seen.erase(path);
  w.last_event_ns[path] = RealtimeNs();
  if (!w.settle->Touch(path, now) && w.settle->TakeOverflow())
    ScheduleScan(w, "queue_full");
}

void Daemon::ScheduleScan(Watch& w, std::string reason) {
  if (w.state != Watch::State::kActive || stopping_) return;
  if (w.scan_running && reason != "start") {
    w.next_poll = Clock::now();  // scan again right after the running one
    return;
  }
  std::string root = w.config.path;
  bool recursive = w.config.recursive;
  if (reason.rfind("new_directory:", 0) == 0) {
    root = reason.substr(std::strlen("new_directory:"));
    recursive = true;
    reason = "new_directory";
  }
  if (!w.root) return;
  auto* work = new ScanWork;
  work->request.data = work;
  work->daemon = this;
  work->watch = w.config.name;
  work->root = root;
  work->root_fd = w.root;
  work->watch_path = w.config.path;
  work->recursive = recursive;
  work->patterns = w.config.patterns;
  work->reason = reason;
  if (work->root == w.config.path) w.scan_running = true;
  ++pending_scans_;
  // Scans run on libuv's thread pool: a slow or hung network filesystem
  // must not stall the loop.
  uv_queue_work(
      &loop_, &work->request,
      [](uv_work_t* request) {
        auto* work = static_cast<ScanWork*>(request->data);
        ScanOptions options;
        options.recursive = work->recursive;
        auto patterns = work->patterns;
        options.filter = [patterns](const std::string& path) { return MatchesPatterns(patterns, path); };
        // By descriptor from the watch root: a new directory swapped for a
        // symlink before this runs is refused, not listed.
        work->ok = ScanDirectory(work->root_fd->get(), work->watch_path,
                                 RelativeTo(work->watch_path, work->root), options, &work->snapshot,
                                 &work->error);
        if (!work->ok) work->error_code = errno;
      },
      [](uv_work_t* request, int) {
        auto* work = static_cast<ScanWork*>(request->data);
        work->daemon->OnScanDone(work);
        delete work;
      });
}

void Daemon::OnScanDone(ScanWork* work) {
  --pending_scans_;
  Watch* w = FindWatch(work->watch);
  if (!w || stopping_) return;
  const bool whole_watch = work->root == w->config.path;
  if (whole_watch) w->scan_running = false;
  if (w->state != Watch::State::kActive) return;
  const Clock::time_point now = Clock::now();
  if (!work->ok) {
    if (whole_watch && !IsTrustedDirectory(w->config.path))
      return GoMissing(*w, work->error);
    // A new directory renamed away or swapped for a symlink before its scan
    // ran (a staging directory, say): nothing was lost, nothing to report.
    if (!whole_watch && (work->error_code == ENOENT || work->error_code == ENOTDIR ||
                         work->error_code == ELOOP || work->error_code == EXDEV)) {
      Log(LogLevel::kDebug, "scan_skipped", {{"watch", w->config.name}}, work->error);
      return;
    }
    Log(LogLevel::kError, "scan_failed", {{"watch", w->config.name}, {"path", work->root}},
        work->error);
    return;
  }
  if (work->reason == "start") {
    // Verify the newest checkpoint so state is known right after a restart;
    // the rest of the history is left alone.
    w->known = work->snapshot;
    if (w->poller) w->poller->Baseline(work->snapshot);
    w->baseline_done = true;
    if (w->verify_all_on_start) {
      w->verify_all_on_start = false;
      for (const auto& [path, stat] : work->snapshot.files) Touch(*w, path, now - w->config.settle);
      ArmSettleTimer();
      return;
    }
    auto newest = std::max_element(work->snapshot.files.begin(), work->snapshot.files.end(),
                                   [](const auto& a, const auto& b) { return a.second.mtime_ns < b.second.mtime_ns; });
    if (newest != work->snapshot.files.end()) {
      w->settle->Touch(newest->first, now - w->config.settle);
    }
    ArmSettleTimer();
    return;
  }
  if (work->reason == "poll") {
    for (const std::string& path : w->poller->Update(work->snapshot, now)) {
      w->known.files[path] = work->snapshot.files[path];
      Touch(*w, path, now);
    }
    ArmSettleTimer();
    return;
  }
  // A rescan (overflow, new directory, queue full): verify what changed since
  // we last looked, so each completed write still gets exactly one verdict.
  std::size_t changed = 0;
  for (const auto& [path, stat] : work->snapshot.files) {
    auto known = w->known.files.find(path);
    if (known != w->known.files.end() && known->second == stat) continue;
    w->known.files[path] = stat;
    Touch(*w, path, now);
    ++changed;
  }
  if (work->reason != "new_directory") {
    metrics_->Rescanned(w->config.name, work->reason);
    Log(LogLevel::kWarn, "rescan",
        {{"watch", w->config.name}, {"reason", work->reason}, {"files", std::to_string(work->snapshot.files.size())},
         {"changed", std::to_string(changed)}});
  }
  ArmSettleTimer();
}

void Daemon::ArmSettleTimer() {
  if (stopping_) return;
  std::optional<Clock::time_point> next;
  for (auto& [name, w] : watches_) {
    auto deadline = w->settle->NextDeadline();
    if (deadline && (!next || *deadline < *next)) next = deadline;
  }
  if (!next) {
    uv_timer_stop(&settle_timer_);
    return;
  }
  auto delay = duration_cast<milliseconds>(*next - Clock::now()).count();
  uv_timer_start(&settle_timer_, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->OnSettleTimer(); },
                 static_cast<std::uint64_t>(std::max<long long>(delay, 0)), 0);
}

void Daemon::OnSettleTimer() {
  const Clock::time_point now = Clock::now();
  for (auto& [name, w] : watches_)
    for (const std::string& path : w->settle->Ready(now)) Dispatch(*w, path);
  metrics_->SetQueueLength(queue_->waiting());
  ArmSettleTimer();
}

void Daemon::Dispatch(Watch& w, const std::string& path) {
  const std::string relative = RelativeTo(w.config.path, path);
  if (relative.empty() || !w.root) return;
  OpenedEntry entry = ProbeBeneath(w.root->get(), relative);
  if (entry.kind == EntryKind::kSymlink) return ReportSymlink(w, path, relative);
  if (entry.kind == EntryKind::kSymlinkInPath) return;  // see OnFileEvent()
  std::optional<FileStat> stat;
  if (entry.kind == EntryKind::kRegular || entry.kind == EntryKind::kNotRegular)
    stat = ToFileStat(entry.st);
  auto reported = w.reported.find(path);
  if (stat && reported != w.reported.end() && reported->second == *stat) {
    w.last_event_ns.erase(path);
    Log(LogLevel::kDebug, "verify_skipped", {{"watch", w.config.name}, {"path", path}},
        "unchanged since its last verdict");
    return;
  }
  w.settle->MarkInFlight(path);
  // Remember the version dispatched, so a later overflow rescan does not
  // verify the same write twice.
  if (stat) w.known.files[path] = *stat;
  auto event = w.last_event_ns.find(path);
  w.dispatched[path] = {stat, event == w.last_event_ns.end() ? RealtimeNs() : event->second};
  if (event != w.last_event_ns.end()) w.last_event_ns.erase(event);
  VerifyJob job;
  job.watch = w.config.name;
  job.path = path;
  job.root = w.root;
  job.relative = relative;
  job.options.level = w.config.level;
  job.options.full_max_bytes = config_.verify.full_max_bytes;
  job.options.memory_budget = config_.verify.memory_limit / 2;
  if (entry.kind == EntryKind::kNotRegular) {
    // A FIFO, socket, device or directory named like a checkpoint: its
    // verdict needs no child and no queue slot (opening a FIFO would block).
    OnVerified(job, UnopenedResult(path, entry, job.options.level));
    return;
  }
  if (!queue_->Enqueue(std::move(job))) {
    w.settle->Finish(path);
    Log(LogLevel::kWarn, "queue_full", {{"watch", w.config.name}, {"path", path}},
        "verification queue is full (verify.queue_limit); the watch will be rescanned");
    ScheduleScan(w, "queue_full");
  }
}

void Daemon::OnVerified(const VerifyJob& job, const VerifyResult& unbounded) {
  // Verdicts made here (not_regular, not_found) are bounded like the child's.
  VerifyResult result = unbounded;
  BoundResult(&result);
  Watch* w = FindWatch(job.watch);
  metrics_->SetQueueLength(queue_->waiting());
  if (!w) return;
  if (w->settle->Finish(job.path)) {
    // Written again while we read it: the newer write gets its own verdict.
    Log(LogLevel::kDebug, "verify_superseded", {{"watch", job.watch}, {"path", job.path}},
        "file was written again during verification; verifying the new write");
    ArmSettleTimer();
    return;
  }
  const Clock::time_point now = Clock::now();
  Watch::Dispatched dispatched = w->dispatched[job.path];
  w->dispatched.erase(job.path);
  // A broken verdict on a file that has changed since its write event — the
  // trainer's next save already truncating and rewriting it — describes a
  // save under way, not the one that completed: its own close will bring a
  // verdict. (The child catches changes during its read; this catches a
  // verification that ran entirely inside the next save's quiet moments.)
  if (!result.ok()) {
    std::optional<FileStat> current = StatBeneath(*w, job.path);
    const bool changed = current && (!dispatched.stat || !(*current == *dispatched.stat) ||
                                     current->mtime_ns > dispatched.event_ns);
    if (changed) {
      Log(LogLevel::kDebug, "verify_superseded",
          {{"watch", job.watch}, {"path", job.path}, {"verdict", std::string(VerdictName(result.verdict))}},
          "file changed after its write event (the next save is under way); waiting for that save");
      w->last_event_ns[job.path] = RealtimeNs();
      w->settle->Touch(job.path, now + config_.verify.timeout - w->config.settle);
      ArmSettleTimer();
      return;
    }
  }
  // A writer that still has the file open gets one more look: after
  // verify.timeout for in_progress; after a moment for an empty file, which
  // is also what a save looks like between its O_TRUNC and its first write.
  // Only a state that outlives the second look is a failed save.
  if ((result.verdict == Verdict::kInProgress || result.verdict == Verdict::kEmpty) &&
      w->in_progress_seen[job.path]++ == 0) {
    const milliseconds delay = result.verdict == Verdict::kEmpty
                                   ? std::min<milliseconds>(config_.verify.timeout, kEmptyRecheck)
                                   : config_.verify.timeout;
    Log(LogLevel::kWarn, "verify_deferred",
        {{"watch", job.watch}, {"path", job.path}, {"verdict", std::string(VerdictName(result.verdict))}},
        result.reason + "; checking again in " + FormatDuration(delay));
    w->settle->Touch(job.path, now + delay - w->config.settle);
    ArmSettleTimer();
    return;
  }
  const bool stuck = w->in_progress_seen.erase(job.path) > 0 &&
                     (result.verdict == Verdict::kInProgress || result.verdict == Verdict::kEmpty);
  if (dispatched.stat) w->reported[job.path] = *dispatched.stat;

  bool ok = result.ok();
  std::string message = result.reason;
  if (stuck)
    message += "; unchanged since the last look: the writer most likely died or hung mid-save "
               "(killed, out of memory, preempted)";
  std::string cause;
  // The file's own filesystem: under a recursive watch it may be another mount.
  FsSpace space;
  const std::string parent = job.path.substr(0, job.path.rfind('/'));
  const bool have_space = StatSpace(parent.empty() ? "/" : parent, &space);
  if (!ok) {
    SaveCause c = ClassifyFailure(result, space, w->config.min_free);
    cause = c.name;
    if (!c.explanation.empty()) message += "; " + c.explanation;
  } else {
    // Saved fine, but the people who load it must be able to read it.
    std::string unreadable;
    for (const Principal& reader : w->config.readers) {
      std::string why = WhyCannotRead(job.path, reader);
      if (!why.empty()) unreadable += (unreadable.empty() ? "" : "; ") + why;
    }
    SetProblem(*w, "unreadable", !unreadable.empty(), unreadable);
    if (!unreadable.empty()) {
      cause = "permission_denied";
      message += "; but " + unreadable;
    }
  }

  std::vector<LogField> fields = {{"watch", job.watch},
                                  {"path", job.path},
                                  {"verdict", std::string(VerdictName(result.verdict))},
                                  {"verify_level", std::string(LevelName(result.level))},
                                  {"bytes", std::to_string(result.bytes)}};
  if (result.expected_bytes) fields.push_back({"expected_bytes", std::to_string(*result.expected_bytes)});
  char elapsed[32];
  std::snprintf(elapsed, sizeof elapsed, "%.1f", result.elapsed_ms);
  fields.push_back({"elapsed_ms", elapsed});
  if (!result.keras.custom_classes.empty()) {
    std::string classes;
    for (const std::string& c : result.keras.custom_classes) classes += (classes.empty() ? "" : ",") + c;
    fields.push_back({"custom_classes", classes});
  }
  if (!cause.empty()) {
    fields.push_back({"cause", cause});
    if (have_space) fields.push_back({"avail_bytes", std::to_string(space.avail)});
  }
  Log(cause.empty() ? LogLevel::kInfo : LogLevel::kError, "verify", std::move(fields), message);

  metrics_->Verified(job.watch, result.verdict, result.level, result.elapsed_ms / 1000.0, result.bytes);
  metrics_->SetLastCheckpointOk(job.watch, cause.empty());
  if (ok) {
    ++w->ok_total;
    w->last_good_time = UnixNow();
    w->last_good_bytes = result.bytes;
    w->last_good_path = job.path;
    metrics_->SetLastGood(job.watch, *w->last_good_time, result.bytes);
    if (w->stale) {
      w->stale->Ok(now);
      SetProblem(*w, "stale", false);
    }
  } else {
    ++w->failed_total;
  }
  if (!cause.empty()) metrics_->SaveFailed(job.watch, cause);
  CheckSpace(*w);
}

void Daemon::SetProblem(Watch& w, const std::string& problem, bool active, const std::string& reason) {
  metrics_->SetProblem(w.config.name, problem, active);
  switch (w.problems.Set(problem, active, reason)) {
    case ProblemSet::Change::kStarted:
      Log(problem == "missing_directory" ? LogLevel::kWarn : LogLevel::kError, "problem",
          {{"watch", w.config.name}, {"problem", problem}, {"path", w.config.path}}, reason);
      break;
    case ProblemSet::Change::kCleared:
      Log(LogLevel::kInfo, "problem_cleared",
          {{"watch", w.config.name}, {"problem", problem}, {"path", w.config.path}});
      break;
    case ProblemSet::Change::kNone:
      break;
  }
}

// The failure that leaves no file behind: the trainer cannot create one.
void Daemon::CheckWritable(Watch& w) {
  w.next_writable_check = Clock::now() + std::chrono::seconds(30);
  if (!w.config.writer || w.state != Watch::State::kActive) return;
  std::string why = WhyCannotCreateIn(w.config.path, *w.config.writer);
  if (!why.empty()) why += ": its saves will fail with PermissionError [Errno 13]";
  SetProblem(w, "not_writable", !why.empty(), why);
}

void Daemon::CheckSpace(Watch& w) {
  FsSpace space;
  if (w.state != Watch::State::kActive || !StatSpace(w.config.path, &space)) return;
  metrics_->SetFilesystem(w.config.name, space.avail, space.size);
  std::string why = LowSpaceReason(space, w.config.min_free, w.last_good_bytes);
  SetProblem(w, "low_space", !why.empty(), why);
}

// ---- housekeeping ----------------------------------------------------------

void Daemon::OnTick() {
  const Clock::time_point now = Clock::now();
  for (auto& [name, w] : watches_) {
    if (w->stale && w->config.expect_every)
      SetProblem(*w, "stale", w->stale->Stale(now),
                 "no good checkpoint for " +
                     FormatDuration(duration_cast<milliseconds>(w->stale->Age(now))) +
                     " (expect_every " + FormatDuration(*w->config.expect_every) + ")");
    if (w->state == Watch::State::kMissing) {
      // Belt and braces for missed events (a watch that could not be added).
      if (w->missing && w->missing->Refresh() == MissingWatch::Step::kExists) Recovered(*w);
      continue;
    }
    // The root's descriptor keeps a deleted root's inode alive, and inotify
    // says IN_DELETE_SELF only when the inode goes: notice the deletion here.
    struct stat root_stat;
    if (w->root && fstat(w->root->get(), &root_stat) == 0 && root_stat.st_nlink == 0) {
      GoMissing(*w, "it was deleted");
      continue;
    }
    if (w->polling && w->baseline_done && !w->scan_running && now >= w->next_poll) {
      w->next_poll = now + w->config.poll_interval;
      ScheduleScan(*w, "poll");
    } else if (!w->polling && !w->scan_running && w->next_poll.time_since_epoch().count() != 0 &&
               now >= w->next_poll) {
      w->next_poll = {};
      ScheduleScan(*w, "overflow");
    }
    CheckSpace(*w);
    if (now >= w->next_writable_check) CheckWritable(*w);
    if (config_.log.summary_every.count() > 0 && now >= w->next_summary) {
      if (w->next_summary.time_since_epoch().count() != 0) Summary(*w);
      w->next_summary = now + config_.log.summary_every;
    }
  }
  metrics_->SetQueueLength(queue_->waiting());
  if (watchdog_ && now >= next_watchdog_) {
    NotifyWatchdog();
    next_watchdog_ = now + duration_cast<Clock::duration>(*watchdog_ / 2);
  }
}

void Daemon::Summary(Watch& w) {
  std::vector<LogField> fields = {{"watch", w.config.name},
                                  {"state", w.state == Watch::State::kActive ? "active" : "missing"},
                                  {"ok", std::to_string(w.ok_total)},
                                  {"failed", std::to_string(w.failed_total)}};
  std::string msg;
  if (w.last_good_time) {
    double age = UnixNow() - *w.last_good_time;
    fields.push_back({"last_good", w.last_good_path});
    fields.push_back({"last_good_age_s", std::to_string(static_cast<long long>(age))});
    fields.push_back({"last_good_bytes", std::to_string(w.last_good_bytes)});
    msg = "last good checkpoint " + Basename(w.last_good_path) + " (" + HumanBytes(w.last_good_bytes) +
          ") " + HumanDuration(age) + " ago";
  } else {
    msg = "no good checkpoint seen since start";
  }
  struct statvfs fs;
  if (statvfs(w.config.path.c_str(), &fs) == 0) {
    std::uint64_t avail = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    fields.push_back({"avail_bytes", std::to_string(avail)});
    msg += "; " + HumanBytes(avail) + " free";
  }
  Log(LogLevel::kInfo, "summary", std::move(fields), msg);
}

// ---- reload and stop ---------------------------------------------------------

void Daemon::Reload() {
  if (stopping_) return;
  NotifyReloading();
  auto fail = [&](const std::string& why) {
    metrics_->ConfigReloaded(false, UnixNow());
    Log(LogLevel::kError, "reload_failed", {{"source", config_path_}},
        why + "; the previous configuration keeps running");
    NotifyReady(Status());
  };
  if (config_path_.empty()) return fail("running on the embedded default config: nothing to reload");
  Config next;
  std::string err;
  if (!LoadConfigFile(config_path_, &next, &err)) return fail(err);
  std::vector<std::string> blockers = ReloadBlockers(config_, next);
  if (!blockers.empty()) {
    std::string keys;
    for (const std::string& k : blockers) keys += (keys.empty() ? "" : ", ") + k;
    return fail("these keys cannot change without a restart: " + keys);
  }
  if (next.log.file != config_.log.file) {
    auto log = EventLog::Open(next.log.file, next.log.format, next.log.level, &err);
    if (!log) return fail(err);
    log_ = std::move(log);
  }
  log_->set_level(next.log.level);
  log_->set_format(next.log.format);

  // Watches: removed, added, or changed where it matters to the backend.
  std::set<std::string> next_names;
  for (const WatchConfig& wc : next.watches) next_names.insert(wc.name);
  for (auto it = watches_.begin(); it != watches_.end();) {
    if (next_names.count(it->first)) {
      ++it;
      continue;
    }
    StopWatch(*it->second);
    queue_->DropWatch(it->first);
    metrics_->RemoveWatch(it->first);
    Log(LogLevel::kInfo, "watch_removed", {{"watch", it->first}, {"path", it->second->config.path}});
    it = watches_.erase(it);
  }
  config_ = std::move(next);
  ApplyVerifyConfig();
  for (const WatchConfig& wc : config_.watches) {
    Watch* w = FindWatch(wc.name);
    if (!w) {
      auto fresh = std::make_unique<Watch>();
      fresh->config = wc;
      Watch& ref = *fresh;
      watches_[wc.name] = std::move(fresh);
      StartWatch(ref);
      continue;
    }
    const bool restart = w->config.path != wc.path || w->config.recursive != wc.recursive ||
                         w->config.backend != wc.backend || w->config.settle != wc.settle;
    w->config = wc;
    if (!wc.expect_every) w->stale.reset();
    else if (!w->stale) w->stale.emplace(*wc.expect_every, Clock::now());
    else w->stale->set_expect_every(*wc.expect_every);
    if (restart) {
      // Queued work is kept: pending paths stay in the settle queue.
      StopWatch(*w);
      StartWatch(*w);
    }
  }
  metrics_->ConfigReloaded(true, UnixNow());
  Log(LogLevel::kInfo, "reload", {{"source", config_path_}, {"watches", std::to_string(watches_.size())}},
      "configuration reloaded");
  NotifyReady(Status());
  ArmSettleTimer();
}

void Daemon::Stop(const char* signal_name) {
  if (stopping_) return;
  stopping_ = true;
  NotifyStopping();
  Log(LogLevel::kInfo, "stop",
      {{"signal", signal_name}, {"running", std::to_string(queue_ ? queue_->running() : 0)},
       {"queued", std::to_string(queue_ ? queue_->waiting() : 0)}},
      "stopping: waiting up to " + std::to_string(kStopGraceMs / 1000) + "s for running verifications");
  if (inotify_poll_active_) uv_poll_stop(&inotify_poll_);
  uv_timer_stop(&settle_timer_);
  uv_timer_stop(&tick_timer_);
  if (queue_)
    queue_->Shutdown(kStopGraceMs, [this] { CloseHandles(); });
  else
    CloseHandles();
}

void Daemon::CloseHandles() {
  auto close = [](auto* handle) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(handle)))
      uv_close(reinterpret_cast<uv_handle_t*>(handle), nullptr);
  };
  close(&sig_hup_);
  close(&sig_term_);
  close(&sig_int_);
  close(&sig_usr1_);
  close(&settle_timer_);
  close(&tick_timer_);
  if (inotify_poll_active_) close(&inotify_poll_);
  // Thread-pool scans still running finish on their own; their callbacks see
  // stopping_ and do nothing.
}

int Daemon::Run() {
  uv_loop_init(&loop_);
  uv_timer_init(&loop_, &settle_timer_);
  uv_timer_init(&loop_, &tick_timer_);
  settle_timer_.data = tick_timer_.data = this;
  struct SignalSpec {
    uv_signal_t* handle;
    int signum;
  };
  for (SignalSpec s : {SignalSpec{&sig_hup_, SIGHUP}, SignalSpec{&sig_term_, SIGTERM},
                       SignalSpec{&sig_int_, SIGINT}, SignalSpec{&sig_usr1_, SIGUSR1}}) {
    uv_signal_init(&loop_, s.handle);
    s.handle->data = this;
    uv_signal_start(
        s.handle,
        [](uv_signal_t* handle, int signum) {
          auto* daemon = static_cast<Daemon*>(handle->data);
          if (signum == SIGHUP) return daemon->Reload();
          if (signum == SIGUSR1) {
            std::string err;
            if (!daemon->log_->Reopen(&err))
              daemon->Log(LogLevel::kError, "log_reopen_failed", {{"file", daemon->log_->file()}}, err);
            else
              daemon->Log(LogLevel::kInfo, "log_reopened", {{"file", daemon->log_->file()}});
            return;
          }
          daemon->Stop(signum == SIGTERM ? "SIGTERM" : "SIGINT");
        },
        s.signum);
  }
  if (Setup()) {
    uv_timer_start(&tick_timer_, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->OnTick(); },
                   static_cast<std::uint64_t>(kTick.count()), static_cast<std::uint64_t>(kTick.count()));
  } else {
    stopping_ = true;
    CloseHandles();
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  queue_.reset();
  watches_.clear();
  inotify_.reset();
  if (uv_loop_close(&loop_) != 0) {
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  if (exit_code_ == 0) Log(LogLevel::kInfo, "stopped", {}, "all verifications finished or stopped");
  metrics_.reset();
  return exit_code_;
}

}  // namespace

int RunDaemon(const Config& config, const std::string& config_path, std::unique_ptr<EventLog> log) {
  Daemon daemon(config, config_path, std::move(log));
  return daemon.Run();
}

}  // namespace ckptwatch
