// The libuv loop that runs the pipeline: it owns the handles (signals,
// timers, the inotify descriptor, the thread pool, verifier children, the
// metrics server) and turns each into one Pipeline input. It decides nothing.
#include "core/daemon.h"

#include <malloc.h>
#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>

#include "core/inotify_set.h"
#include "core/real_env.h"
#include "core/start_checks.h"
#include "core/state_file.h"
#include "core/thread_pool_set_judge.h"
#include "decide/pipeline.h"
#include "report/event_log.h"
#include "report/event_reporter.h"
#include "report/metrics.h"
#include "report/status_json.h"
#include "report/status_server.h"
#include "report/systemd_notify.h"
#include "verify/engine/verify_queue.h"
#include "verify/hdf5/hdf5_inspector.h"
#include "watch/name_patterns.h"
#include "watch/scan_directory.h"

namespace ckptwatch {
namespace {

ChildLimits VerifierLimits(const Config& config) {
  ChildLimits limits;
  limits.timeout_seconds = static_cast<double>(config.verify.timeout.count()) / 1000.0;
  limits.memory_bytes = config.verify.memory_limit;
  return limits;
}

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// Housekeeping period (redis's serverCron): polling, missing watches,
// summaries, the systemd watchdog.
constexpr milliseconds kTick{1000};
// How long SIGTERM waits for running verifications before killing them.
constexpr std::uint64_t kStopGraceMs = 5000;
// How often changed verdicts are written to the state file (and at stop).
constexpr std::chrono::seconds kStateSaveEvery{10};
constexpr std::chrono::seconds kTrimEvery{30};

// Verifier children (verify_queue.h); each job opens its file beneath the
// watch's root descriptor.
class QueueVerifier : public Verifier {
 public:
  QueueVerifier(VerifyQueue& queue, const RealEnv& env) : queue_(queue), env_(env) {}
  bool Enqueue(VerifyJob job) override {
    job.root = env_.Root(job.watch);
    if (!job.root) job.relative.clear();
    return queue_.Enqueue(std::move(job));
  }
  bool Full() const override { return queue_.full(); }
  void DropWatch(const std::string& watch) override { queue_.DropWatch(watch); }
  std::size_t waiting() const override { return queue_.waiting(); }
  std::size_t running() const override { return queue_.running(); }

 private:
  VerifyQueue& queue_;
  const RealEnv& env_;
};

class Daemon;

// Scans on libuv's thread pool: a slow or hung network filesystem must not
// stall the loop. By descriptor from the watch root (poll_scanner.h).
class ThreadPoolScanner : public Scanner {
 public:
  ThreadPoolScanner(uv_loop_t* loop, const RealEnv& env, Daemon& daemon)
      : loop_(loop), env_(env), daemon_(daemon) {}
  void Scan(ScanRequest request) override;
  int pending() const { return pending_; }

 private:
  struct Work {
    uv_work_t request{};
    ThreadPoolScanner* scanner = nullptr;
    std::shared_ptr<UniqueFd> root;  // kept open while the scan runs
    ScanResult result;
  };
  uv_loop_t* loop_;
  const RealEnv& env_;
  Daemon& daemon_;
  int pending_ = 0;
};

class Daemon {
 public:
  Daemon(Config config, std::string config_path, std::unique_ptr<EventLog> log)
      : config_(std::move(config)), config_path_(std::move(config_path)), log_(std::move(log)) {}
  int Run();
  void OnScanDone(const ScanResult& result);

 private:
  bool Setup();
  void Reload();
  void ApplyVerifyConfig();
  void Stop(const char* signal_name);
  void CloseHandles();
  void OnInotifyEvents(const std::vector<WatchEvent>& events);
  void ArmSettleTimer();
  void OnTick();
  void NotifyReadyOnce();
  void RestoreState();
  void SaveState();
  // After every input: the settle timer follows the pipeline's next deadline.
  template <typename F>
  void Step(F&& input) {
    if (stopping_) return;
    input();
    ArmSettleTimer();
  }
  void Log(LogLevel level, LogEvent event, std::vector<LogField> fields, std::string msg = "") {
    log_->Write(level, event, std::move(fields), std::move(msg));
  }
  // Which warm verifier gave a verdict and which owners it has seen (always one: the queue
  // kills one that says otherwise). Debug level: the test hook of the one-owner rule.
  void LogWarmVerifier(const VerifyJob& job) {
    if (!log_->Enabled(LogLevel::kDebug)) return;  // a line per file: not built to be dropped
    std::string uids;
    for (uid_t uid : job.verifier_uids) {
      if (!uids.empty()) uids += ',';
      uids += std::to_string(uid);
    }
    Log(LogLevel::kDebug, LogEvent::kVerifierUsed,
        {{"watch", job.watch}, {"path", job.path}, {"verifier_pid", std::to_string(job.verifier_pid)},
         {"owner", std::to_string(job.owner)}, {"verifier_uids", uids}});
  }
  // A libuv call that failed: logged with what it was for; false.
  bool Check(int rc, std::string_view what) {
    if (rc == 0) return true;
    Log(LogLevel::kError, LogEvent::kLoopError, {{"call", std::string(what)}}, uv_strerror(rc));
    return false;
  }

  Config config_;
  std::string config_path_;
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<Metrics> metrics_;
  RealEnv env_;
  std::unique_ptr<EventReporter> reporter_;  // the pipeline's log lines and metrics
  uv_loop_t loop_{};
  uv_signal_t sig_hup_{}, sig_term_{}, sig_int_{}, sig_usr1_{};
  uv_timer_t settle_timer_{}, tick_timer_{};
  std::unique_ptr<InotifyWatchSet> inotify_;  // one inotify instance per watch
  std::unique_ptr<StatusServer> status_;
  std::string state_path_;
  bool state_write_failing_ = false;
  std::chrono::steady_clock::time_point next_state_save_{}, next_trim_{};
  std::unique_ptr<VerifyQueue> queue_;
  std::unique_ptr<QueueVerifier> verifier_;
  std::unique_ptr<ThreadPoolScanner> scanner_;
  std::unique_ptr<ThreadPoolSetJudge> set_judge_;
  std::unique_ptr<Pipeline> pipeline_;
  std::optional<std::chrono::microseconds> watchdog_;
  std::chrono::steady_clock::time_point next_watchdog_;
  bool stopping_ = false;
  bool ready_sent_ = false;  // READY=1 of the start (NotifyReadyOnce())
  int exit_code_ = 0;
};

void ThreadPoolScanner::Scan(ScanRequest request) {
  auto* work = new Work;
  work->request.data = work;
  work->scanner = this;
  work->root = env_.Root(request.watch);
  work->result.request = std::move(request);
  ++pending_;
  int rc = uv_queue_work(
      loop_, &work->request,
      [](uv_work_t* request) {
        auto* work = static_cast<Work*>(request->data);
        ScanResult& r = work->result;
        if (!work->root) {
          r.error = "cannot scan " + r.request.root_path + ": the watch root is not open";
          r.error_code = ENOENT;
          return;
        }
        ScanOptions options;
        options.recursive = r.request.recursive;
        const ScanRequest& q = r.request;
        options.filter = [&q](const std::string& path) {
          return MatchesPatterns(q.patterns, path) &&
                 !Excluded(q.exclude, path.size() > q.root_path.size() ? path.substr(q.root_path.size() + 1) : path);
        };
        r.ok = ScanDirectory(work->root->get(), r.request.root_path, r.request.relative, options,
                             &r.snapshot, &r.error);
        if (!r.ok) r.error_code = errno;
      },
      [](uv_work_t* request, int) {
        auto* work = static_cast<Work*>(request->data);
        --work->scanner->pending_;
        work->scanner->daemon_.OnScanDone(work->result);
        delete work;
      });
  if (rc != 0) {
    // The request never runs: deliver the failure now, as a result.
    --pending_;
    work->result.error = std::string("cannot start a scan: ") + uv_strerror(rc);
    daemon_.OnScanDone(work->result);
    delete work;
  }
}

// ---- setup -----------------------------------------------------------------

bool Daemon::Setup() {
  std::string err;
  std::string key;
  metrics_ = Metrics::Start(config_.metrics, &key, &err);
  if (!metrics_) {
    log_->WriteErrorAlsoToStderr(LogEvent::kStartFailed, {{"key", key}, {"listen", config_.metrics.listen}},
                                 err);
    exit_code_ = 2;
    return false;
  }
  metrics_->SetBuildInfo(CKPTWATCH_VERSION, Hdf5LibraryVersion());
  metrics_->ConfigReloaded(true, env_.UnixNow());
  Log(LogLevel::kInfo, LogEvent::kStart,
      {{"version", CKPTWATCH_VERSION}, {"hdf5_version", Hdf5LibraryVersion()},
       {"pid", std::to_string(getpid())}, {"metrics", config_.metrics.listen}});
  Log(LogLevel::kInfo, LogEvent::kConfigLoaded,
      {{"source", config_.source.empty() ? "embedded default" : config_.source},
       {"watches", std::to_string(config_.watches.size())}});
  if (const std::string why = HardlinkProtectionWarning(kProtectedHardlinksFile); !why.empty())
    Log(LogLevel::kWarn, LogEvent::kHardlinksUnprotected, {{"sysctl", "fs.protected_hardlinks"}}, why);

  WatchError watch_error;
  inotify_ = InotifyWatchSet::Create(
      &loop_, [this](std::vector<WatchEvent>& events) { OnInotifyEvents(events); },
      [this](int status) {
        // A failed poll would leave an inotify watch silent: say so; the
        // polling scans of the tick are all that is left.
        Log(LogLevel::kError, LogEvent::kLoopError, {{"call", "inotify poll"}}, uv_strerror(status));
      },
      &watch_error);
  if (!inotify_) {
    // Every watch polls instead; say so once.
    Log(LogLevel::kError, LogEvent::kBackendFallback, {{"backend", "poll"}}, watch_error.message);
  }

  queue_ = std::make_unique<VerifyQueue>(
      &loop_, SelfExecutable(), static_cast<std::size_t>(config_.verify.max_parallel),
      VerifierLimits(config_), static_cast<std::size_t>(config_.verify.queue_limit),
      [this](const VerifyJob& job, const VerifyResult& result) {
        if (job.verifier_pid != 0) LogWarmVerifier(job);
        Step([&] { pipeline_->OnVerified(job, result); });
      },
      [this](const std::string& how, std::uint64_t restart_ms) {
        Log(LogLevel::kWarn, LogEvent::kVerifierRestarted, {{"how", how}, {"restart_in_ms", std::to_string(restart_ms)}},
            "the pre-forked verifier ended (" + how + "); restarting it");
      },
      [this](const std::string& message) {
        Log(LogLevel::kError, LogEvent::kVerifierOwnersMixed, {}, message);
      });
  ApplyVerifyConfig();
  reporter_ = std::make_unique<EventReporter>(log_, *metrics_);
  verifier_ = std::make_unique<QueueVerifier>(*queue_, env_);
  scanner_ = std::make_unique<ThreadPoolScanner>(&loop_, env_, *this);
  set_judge_ = std::make_unique<ThreadPoolSetJudge>(&loop_, env_, [this](const SetJudgeResult& result) {
    Step([&] { pipeline_->OnSetsJudged(result); });
  });
  pipeline_ = std::make_unique<Pipeline>(config_, env_, inotify_.get(), *scanner_, *verifier_, *set_judge_,
                                         *reporter_);
  RestoreState();
  Step([&] { pipeline_->Start(); });
  const std::string status_path = StatusSocketPath(config_.status);
  status_ = StatusServer::Start(
      &loop_, status_path,
      [this] { return StatusJson(pipeline_->CurrentStatus(), static_cast<long>(getpid()), CKPTWATCH_VERSION); }, &err);
  // Not configured and not ours to create (a daemon run by a user, not the
  // service): a fact, not a fault.
  if (!status_)
    Log(config_.status.socket.empty() && (errno == EACCES || errno == EPERM) ? LogLevel::kInfo : LogLevel::kWarn,
        LogEvent::kStatusUnavailable, {{"socket", status_path}},
        err + "; `ckptwatch status` cannot reach this daemon, everything else runs");
  watchdog_ = WatchdogInterval();
  // READY once a warm verifier waits, warmed up: a save that starts the moment READY is sent
  // would otherwise wait 30-50 ms for the zygote's and the spare verifier's start (bench/
  // sharded_bench.py: the first eight shards). The first tick sends it anyway: a zygote that
  // cannot start leaves files to spawned one-shot children, and is reported.
  queue_->WhenWarm([this] { NotifyReadyOnce(); });
  return true;
}

void Daemon::NotifyReadyOnce() {
  if (ready_sent_ || stopping_) return;
  ready_sent_ = true;
  NotifyReady(pipeline_->Status());
}

void Daemon::ApplyVerifyConfig() {
  queue_->Reconfigure(static_cast<std::size_t>(config_.verify.max_parallel),
                      VerifierLimits(config_),
                      static_cast<std::size_t>(config_.verify.queue_limit));
}

// ---- inputs ------------------------------------------------------------------

void Daemon::OnInotifyEvents(const std::vector<WatchEvent>& events) {
  Step([&] {
    for (const WatchEvent& event : events) pipeline_->OnWatchEvent(event);
  });
}

void Daemon::OnScanDone(const ScanResult& result) {
  Step([&] { pipeline_->OnScanDone(result); });
}

void Daemon::ArmSettleTimer() {
  if (stopping_) return;
  std::optional<std::chrono::steady_clock::time_point> next = pipeline_->NextDeadline();
  if (!next) {
    uv_timer_stop(&settle_timer_);
    return;
  }
  auto delay = duration_cast<milliseconds>(*next - env_.Now()).count();
  Check(uv_timer_start(
            &settle_timer_,
            [](uv_timer_t* t) {
              auto* daemon = static_cast<Daemon*>(t->data);
              daemon->Step([&] { daemon->pipeline_->OnSettleDue(); });
            },
            static_cast<std::uint64_t>(std::max<long long>(delay, 0)), 0),
        "uv_timer_start(settle)");
}

void Daemon::OnTick() {
  NotifyReadyOnce();
  Step([&] { pipeline_->OnTick(); });
  const auto now = env_.Now();
  if (now >= next_state_save_) {
    next_state_save_ = now + kStateSaveEvery;
    if (pipeline_->TakeStateDirty()) SaveState();
  }
  if (now >= next_trim_) {
    // Per-file state freed by deletions goes back to the system, not only
    // to malloc's free lists: RSS follows the files being watched.
    next_trim_ = now + kTrimEvery;
    malloc_trim(0);
  }
  if (watchdog_ && now >= next_watchdog_) {
    NotifyWatchdog();
    next_watchdog_ = now + duration_cast<std::chrono::steady_clock::duration>(*watchdog_ / 2);
  }
}

// ---- state across restarts ------------------------------------------------------

void Daemon::RestoreState() {
  state_path_ = StateFilePath(config_);
  if (state_path_.empty()) return;
  SavedState saved;
  std::string err;
  if (!LoadStateFile(state_path_, &saved, &err)) {
    Log(LogLevel::kWarn, LogEvent::kStateIgnored, {{"file", state_path_}},
        err + "; starting without it: the newest file of each watch is verified, earlier failures "
              "are not known");
    return;
  }
  pipeline_->Restore(std::move(saved));
}

void Daemon::SaveState() {
  if (state_path_.empty() || !pipeline_) return;
  std::string err;
  if (!WriteStateFile(state_path_, pipeline_->Saved(), &err)) {
    if (!state_write_failing_)
      Log(LogLevel::kWarn, LogEvent::kStateWriteFailed, {{"file", state_path_}},
          err + "; verdicts keep being reported, but a restart will not know them");
    state_write_failing_ = true;
    return;
  }
  if (state_write_failing_) Log(LogLevel::kInfo, LogEvent::kStateWritten, {{"file", state_path_}}, "state file written again");
  state_write_failing_ = false;
}

// ---- reload and stop -----------------------------------------------------------

void Daemon::Reload() {
  if (stopping_) return;
  NotifyReloading();
  auto fail = [&](const std::string& why) {
    metrics_->ConfigReloaded(false, env_.UnixNow());
    Log(LogLevel::kError, LogEvent::kReloadFailed, {{"source", config_path_}},
        why + "; the previous configuration keeps running");
    NotifyReady(pipeline_->Status());
  };
  if (config_path_.empty()) return fail("running on the embedded default config: nothing to reload");
  Config next;
  std::string err;
  if (!LoadConfigFile(config_path_, &next, &err)) return fail(err);
  if (const ReloadPlan plan = PlanReload(config_, next); !plan.blockers.empty()) {
    std::string keys;
    for (const std::string& k : plan.blockers) keys += (keys.empty() ? "" : ", ") + k;
    return fail("these keys cannot change without a restart: " + keys);
  }
  std::unique_ptr<EventLog> new_log;
  if (next.log.file != config_.log.file) {
    new_log = EventLog::Open(next.log.file, next.log.format, next.log.level, &err);
    if (!new_log) return fail(err);
  }
  bool applied = false;
  Step([&] { applied = pipeline_->Reload(next, &err); });
  if (!applied) return fail(err);
  if (new_log) log_ = std::move(new_log);
  log_->set_level(next.log.level);
  log_->set_format(next.log.format);
  config_ = std::move(next);
  ApplyVerifyConfig();
  metrics_->ConfigReloaded(true, env_.UnixNow());
  Log(LogLevel::kInfo, LogEvent::kReload,
      {{"source", config_path_}, {"watches", std::to_string(config_.watches.size())}},
      "configuration reloaded");
  NotifyReady(pipeline_->Status());
}

void Daemon::Stop(const char* signal_name) {
  if (stopping_) return;
  stopping_ = true;
  if (pipeline_) pipeline_->Stop();
  if (set_judge_) set_judge_->Stop();
  SaveState();
  NotifyStopping();
  Log(LogLevel::kInfo, LogEvent::kStop,
      {{"signal", signal_name}, {"running", std::to_string(queue_ ? queue_->running() : 0)},
       {"queued", std::to_string(queue_ ? queue_->waiting() : 0)}},
      "stopping: waiting up to " + std::to_string(kStopGraceMs / 1000) + "s for running verifications");
  if (inotify_) inotify_->Close();
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
  if (status_) status_->Close();
  if (inotify_) inotify_->Close();
  // Thread-pool scans still running finish on their own; their results
  // reach a stopped pipeline, which ignores them.
}

int Daemon::Run() {
  if (int rc = uv_loop_init(&loop_); rc != 0) {
    log_->WriteErrorAlsoToStderr(LogEvent::kStartFailed, {},
                                 std::string("uv_loop_init: ") + uv_strerror(rc));
    return 2;
  }
  uv_timer_init(&loop_, &settle_timer_);
  uv_timer_init(&loop_, &tick_timer_);
  settle_timer_.data = tick_timer_.data = this;
  struct SignalSpec {
    uv_signal_t* handle;
    int signum;
  };
  bool signals_ok = true;
  for (SignalSpec s : {SignalSpec{&sig_hup_, SIGHUP}, SignalSpec{&sig_term_, SIGTERM},
                       SignalSpec{&sig_int_, SIGINT}, SignalSpec{&sig_usr1_, SIGUSR1}}) {
    uv_signal_init(&loop_, s.handle);
    s.handle->data = this;
    signals_ok = Check(uv_signal_start(
                           s.handle,
                           [](uv_signal_t* handle, int signum) {
                             auto* daemon = static_cast<Daemon*>(handle->data);
                             if (signum == SIGHUP) return daemon->Reload();
                             if (signum == SIGUSR1) {
                               std::string err;
                               if (!daemon->log_->Reopen(&err))
                                 daemon->Log(LogLevel::kError, LogEvent::kLogReopenFailed,
                                             {{"file", daemon->log_->file()}}, err);
                               else
                                 daemon->Log(LogLevel::kInfo, LogEvent::kLogReopened, {{"file", daemon->log_->file()}});
                               return;
                             }
                             daemon->Stop(signum == SIGTERM ? "SIGTERM" : "SIGINT");
                           },
                           s.signum),
                       "uv_signal_start") &&
                 signals_ok;
  }
  if (signals_ok && Setup()) {
    Check(uv_timer_start(&tick_timer_, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->OnTick(); },
                         static_cast<std::uint64_t>(kTick.count()), static_cast<std::uint64_t>(kTick.count())),
          "uv_timer_start(tick)");
  } else {
    if (exit_code_ == 0) exit_code_ = 2;
    stopping_ = true;
    CloseHandles();
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  pipeline_.reset();
  queue_.reset();
  inotify_.reset();
  if (uv_loop_close(&loop_) != 0) {
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  if (exit_code_ == 0) Log(LogLevel::kInfo, LogEvent::kStopped, {}, "all verifications finished or stopped");
  metrics_.reset();
  return exit_code_;
}

}  // namespace

int RunDaemon(const Config& config, const std::string& config_path, std::unique_ptr<EventLog> log) {
  Daemon daemon(config, config_path, std::move(log));
  return daemon.Run();
}

}  // namespace ckptwatch
