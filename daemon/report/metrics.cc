#include "report/metrics.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "base/text_escape.h"
#include "report/metrics_server.h"
#include "verify/sets/checkpoint_set.h"

namespace ckptwatch {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

namespace {

constexpr std::string_view kCauses[] = {
    "disk_full",   "permission_denied", "truncated",     "corrupt",          "empty",
    "in_progress", "nonfinite",         "timeout",       "verifier_crashed", "not_checkpoint",
    "not_found",   "not_regular",       "external_data", "writer_died",      "load_incompatible",
    "stuck",       "missing_member",    "no_commit_point", "inconsistent_set"};
// Checkpoint sets: every layout (verify/sets/checkpoint_set.h kSetLayouts) and set verdict.
constexpr std::string_view kSetVerdicts[] = {"ok", "incomplete", "inconsistent"};

const Histogram::BucketBoundaries kDurationBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1,    2.5,   5,
                                                     10,    30,     60,    120,  300,   600};

// The labels of a per-run series: a run's series carry `run`; "" is no label, as Prometheus
// reads an empty one (and one family must not hold both spellings of a series).
prometheus::Labels RunLabels(const std::string& watch, const std::string& run) {
  prometheus::Labels labels{{"watch", watch}};
  if (!run.empty()) labels.emplace("run", run);
  return labels;
}

prometheus::Labels With(prometheus::Labels labels, const std::string& name,
                        std::string_view value) {
  labels.emplace(name, std::string(value));
  return labels;
}

}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<MetricsServer> server;
  std::mutex mutex;  // guards the per-watch maps; the series themselves are atomic

  Family<Counter>& verified = prometheus::BuildCounter()
      .Name("ckptwatch_checkpoints_verified_total")
      .Help("Checkpoints verified, by watch and verdict.")
      .Register(*registry);
  Family<Counter>& failures = prometheus::BuildCounter()
      .Name("ckptwatch_save_failures_total")
      .Help("Broken checkpoints, by watch and the cause of the failed save.")
      .Register(*registry);
  Family<Gauge>& failing = prometheus::BuildGauge()
      .Name("ckptwatch_failing_files")
      .Help("Files whose latest verdict is a failed save, by watch and cause, until a newer good "
            "save in the same watch or run resolves them; restored at start from the state file.")
      .Register(*registry);
  Family<Gauge>& problem = prometheus::BuildGauge()
      .Name("ckptwatch_watch_problem")
      .Help("1 while a watch has the problem (missing_directory, not_writable, low_space, stale, unreadable).")
      .Register(*registry);
  Family<Gauge>& last_good_time = prometheus::BuildGauge()
      .Name("ckptwatch_last_good_checkpoint_timestamp_seconds")
      .Help("Unix time the last checkpoint verified ok was verified.")
      .Register(*registry);
  Family<Gauge>& last_good_bytes = prometheus::BuildGauge()
      .Name("ckptwatch_last_good_checkpoint_bytes")
      .Help("Size of the last checkpoint verified ok.")
      .Register(*registry);
  Family<Gauge>& last_attempt = prometheus::BuildGauge()
      .Name("ckptwatch_last_save_attempt_timestamp_seconds")
      .Help("Unix time of the newest verdict on a checkpoint, good or failed: with the last good "
            "one it tells a job that stopped saving from one whose saves fail.")
      .Register(*registry);
  Family<Gauge>& last_ok = prometheus::BuildGauge()
      .Name("ckptwatch_last_checkpoint_ok")
      .Help("1 when the most recent verdict of the watch was ok, else 0.")
      .Register(*registry);
  Family<Gauge>& load_incompatible = prometheus::BuildGauge()
      .Name("ckptwatch_checkpoint_load_incompatible")
      .Help("1 when the newest ok checkpoint of the watch will not load in its load target, else 0.")
      .Register(*registry);
  Family<Counter>& sets = prometheus::BuildCounter()
      .Name("ckptwatch_checkpoint_sets_total")
      .Help("Checkpoint sets judged, by watch, layout and verdict (ok, incomplete, inconsistent).")
      .Register(*registry);
  Family<Gauge>& last_complete = prometheus::BuildGauge()
      .Name("ckptwatch_last_complete_checkpoint_timestamp_seconds")
      .Help("Unix time the newest checkpoint set judged complete was judged.")
      .Register(*registry);
  Family<Gauge>& broken_pointers = prometheus::BuildGauge()
      .Name("ckptwatch_resume_pointers_broken")
      .Help("Resume pointers (latest, a tracker, TF checkpoint, last.ckpt) naming a missing, "
            "incomplete or inconsistent checkpoint set now.")
      .Register(*registry);
  Family<Gauge>& fs_avail = prometheus::BuildGauge()
      .Name("ckptwatch_filesystem_avail_bytes")
      .Help("Space available to unprivileged writers on the watch's filesystem.")
      .Register(*registry);
  Family<Gauge>& fs_size = prometheus::BuildGauge()
      .Name("ckptwatch_filesystem_size_bytes")
      .Help("Size of the watch's filesystem.")
      .Register(*registry);
  Family<Histogram>& duration = prometheus::BuildHistogram()
      .Name("ckptwatch_verify_duration_seconds")
      .Help("Wall time of one verification, isolated child included, by watch and level.")
      .Register(*registry);
  Family<Counter>& verified_bytes = prometheus::BuildCounter()
      .Name("ckptwatch_verified_bytes_total")
      .Help("Bytes of checkpoints verified.")
      .Register(*registry);
  Family<Gauge>& queue_length = prometheus::BuildGauge()
      .Name("ckptwatch_verify_queue_length")
      .Help("Checkpoints waiting for a verifier.")
      .Register(*registry);
  Family<Counter>& rescans = prometheus::BuildCounter()
      .Name("ckptwatch_rescans_total")
      .Help("Directory rescans, by watch and reason (overflow, queue_full, recovered, ...).")
      .Register(*registry);
  Family<Gauge>& watch_info = prometheus::BuildGauge()
      .Name("ckptwatch_watch_info")
      .Help("1 per watch; the path and the backend in use as labels.")
      .Register(*registry);
  Family<Gauge>& build_info = prometheus::BuildGauge()
      .Name("ckptwatch_build_info")
      .Help("1; the ckptwatch and HDF5 library versions as labels.")
      .Register(*registry);
  Family<Gauge>& reload_ok = prometheus::BuildGauge()
      .Name("ckptwatch_config_last_reload_successful")
      .Help("1 when the last configuration (re)load succeeded.")
      .Register(*registry);
  Family<Gauge>& reload_time = prometheus::BuildGauge()
      .Name("ckptwatch_config_last_reload_success_timestamp_seconds")
      .Help("Unix time of the last successful configuration (re)load.")
      .Register(*registry);

  std::map<std::string, Gauge*> watch_info_series;
  std::map<std::string, std::set<std::string>> runs;  // watch -> runs with series

  // Removes the per-run series of `run` ("": the watch's own). Call with `mutex` held.
  void RemoveRunSeries(const std::string& watch, const std::string& run) {
    const prometheus::Labels labels = RunLabels(watch, run);
    for (std::string_view cause : kCauses) {
      failures.Remove(&failures.Add(With(labels, "cause", cause)));
      failing.Remove(&failing.Add(With(labels, "cause", cause)));
    }
    for (Family<Gauge>* family : {&last_good_time, &last_good_bytes, &last_ok, &last_complete, &last_attempt})
      family->Remove(&family->Add(labels));
  }
};

Metrics::Metrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Metrics::~Metrics() = default;

bool PrepareMetricsEndpoint(const MetricsConfig& config, MetricsEndpoint* out, std::string* key,
                            std::string* err) {
  // The syntax was checked when the config loaded; this splits "host:port" / "[v6]:port".
  *key = "metrics.listen";
  const std::size_t colon = config.listen.rfind(':');
  std::string host = colon == std::string::npos ? "" : config.listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string port = colon == std::string::npos ? "" : config.listen.substr(colon + 1);
  if (host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    *err = "'" + config.listen + "' is not host:port";
    return false;
  }
  out->host = host;
  out->port = std::stoi(port);
  if (!ResolveListenHost(out->host, out->port, nullptr, err)) return false;
  out->password.clear();
  if (config.basic_auth_username.empty()) return true;
  *key = "metrics.basic_auth.password_file";
  const std::string& path = config.basic_auth_password_file;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "re"), std::fclose);
  if (!file) {
    *err = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  char* line = nullptr;
  std::size_t capacity = 0;
  errno = 0;
  const ssize_t length = getline(&line, &capacity, file.get());
  std::unique_ptr<char, void (*)(void*)> owned(line, std::free);
  if (length < 0) {
    *err = "cannot read " + path + ": " + (errno != 0 ? std::strerror(errno) : "the file is empty");
    return false;
  }
  out->password.assign(line, static_cast<std::size_t>(length));
  if (!out->password.empty() && out->password.back() == '\n') out->password.pop_back();
  return true;
}

std::unique_ptr<Metrics> Metrics::Start(const MetricsConfig& config, std::string* key,
                                        std::string* err) {
  MetricsEndpoint endpoint;
  if (!PrepareMetricsEndpoint(config, &endpoint, key, err)) return nullptr;
  *key = "metrics.listen";
  auto impl = std::make_unique<Impl>();
  // Our own server rather than prometheus-cpp's Exposer: civetweb gives each connection a
  // worker thread, so a few idle clients stall every scrape (metrics_server.h).
  impl->server = MetricsServer::Start(
      endpoint.host, endpoint.port, MetricsServerLimits{},
      [registry = impl->registry] {
        return prometheus::TextSerializer().Serialize(registry->Collect());
      },
      config.basic_auth_username, endpoint.password, err);
  if (!impl->server) {
    *err = "cannot listen on " + config.listen + " for metrics (" + *err +
           "): the address is invalid or another process holds the port; set metrics.listen";
    return nullptr;
  }
  impl->queue_length.Add({}).Set(0);
  return std::unique_ptr<Metrics>(new Metrics(std::move(impl)));
}

int Metrics::port() const { return impl_->server->port(); }

void Metrics::SetBuildInfo(const std::string& version, const std::string& hdf5_version) {
  impl_->build_info.Add({{"version", version}, {"hdf5_version", hdf5_version}}).Set(1);
}

void Metrics::AddWatch(const std::string& watch, const std::string& path, std::string_view backend) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto it = impl_->watch_info_series.find(watch); it != impl_->watch_info_series.end())
    impl_->watch_info.Remove(it->second);
  impl_->watch_info_series[watch] =
      &impl_->watch_info.Add({{"watch", watch}, {"path", EscapeBytes(path)}, {"backend", std::string(backend)}});
  impl_->watch_info_series[watch]->Set(1);
  // Series exist from the start so increase() and absent() behave.
  for (Verdict v : kAllVerdicts)
    impl_->verified.Add({{"watch", watch}, {"verdict", std::string(VerdictName(v))}});
  for (std::string_view cause : kCauses)
    impl_->failures.Add({{"watch", watch}, {"cause", std::string(cause)}});
  for (WatchProblem p : kAllWatchProblems)
    impl_->problem.Add({{"watch", watch}, {"problem", std::string(WatchProblemName(p))}});
  impl_->verified_bytes.Add({{"watch", watch}});
  for (std::string_view layout : kSetLayouts)
    for (std::string_view verdict : kSetVerdicts)
      impl_->sets.Add({{"watch", watch}, {"layout", std::string(layout)}, {"verdict", std::string(verdict)}});
  impl_->broken_pointers.Add({{"watch", watch}}).Set(0);
}

void Metrics::RemoveWatch(const std::string& watch) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (auto it = impl_->watch_info_series.find(watch); it != impl_->watch_info_series.end()) {
    impl_->watch_info.Remove(it->second);
    impl_->watch_info_series.erase(it);
  }
  for (Verdict v : kAllVerdicts)
    impl_->verified.Remove(&impl_->verified.Add({{"watch", watch}, {"verdict", std::string(VerdictName(v))}}));
  impl_->RemoveRunSeries(watch, "");
  for (const std::string& run : impl_->runs[watch]) impl_->RemoveRunSeries(watch, run);
  impl_->runs.erase(watch);
  for (WatchProblem p : kAllWatchProblems)
    impl_->problem.Remove(&impl_->problem.Add({{"watch", watch}, {"problem", std::string(WatchProblemName(p))}}));
  for (Family<Gauge>* family :
       {&impl_->fs_avail, &impl_->fs_size, &impl_->load_incompatible, &impl_->broken_pointers})
    family->Remove(&family->Add({{"watch", watch}}));
  for (std::string_view layout : kSetLayouts)
    for (std::string_view verdict : kSetVerdicts)
      impl_->sets.Remove(&impl_->sets.Add(
          {{"watch", watch}, {"layout", std::string(layout)}, {"verdict", std::string(verdict)}}));
  impl_->verified_bytes.Remove(&impl_->verified_bytes.Add({{"watch", watch}}));
  for (Level level : {Level::kHeader, Level::kStructure, Level::kFull})
    impl_->duration.Remove(
        &impl_->duration.Add({{"watch", watch}, {"level", std::string(LevelName(level))}}, kDurationBuckets));
}

void Metrics::Verified(const std::string& watch, Verdict verdict, Level level, double seconds,
                       std::uint64_t bytes) {
  impl_->verified.Add({{"watch", watch}, {"verdict", std::string(VerdictName(verdict))}}).Increment();
  impl_->duration.Add({{"watch", watch}, {"level", std::string(LevelName(level))}}, kDurationBuckets)
      .Observe(seconds);
  impl_->verified_bytes.Add({{"watch", watch}}).Increment(static_cast<double>(bytes));
}

void Metrics::SaveFailed(const std::string& watch, const std::string& run, std::string_view cause) {
  impl_->failures.Add(With(RunLabels(watch, run), "cause", cause)).Increment();
}

void Metrics::SetLastGood(const std::string& watch, const std::string& run, double unix_seconds,
                          std::uint64_t bytes) {
  impl_->last_good_time.Add(RunLabels(watch, run)).Set(unix_seconds);
  impl_->last_good_bytes.Add(RunLabels(watch, run)).Set(static_cast<double>(bytes));
}

void Metrics::SetLastCheckpointOk(const std::string& watch, const std::string& run, bool ok) {
  impl_->last_ok.Add(RunLabels(watch, run)).Set(ok ? 1 : 0);
}

void Metrics::SetLastSaveAttempt(const std::string& watch, const std::string& run, double unix_seconds) {
  impl_->last_attempt.Add(RunLabels(watch, run)).Set(unix_seconds);
}

void Metrics::SetFailingFiles(const std::string& watch, const std::string& run, std::string_view cause,
                              std::size_t count) {
  impl_->failing.Add(With(RunLabels(watch, run), "cause", cause)).Set(static_cast<double>(count));
}

void Metrics::AddRun(const std::string& watch, const std::string& run) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->runs[watch].insert(run);
  for (std::string_view cause : kCauses)
    impl_->failures.Add(With(RunLabels(watch, run), "cause", cause));
}

void Metrics::RemoveRun(const std::string& watch, const std::string& run) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto it = impl_->runs.find(watch);
  if (it == impl_->runs.end() || !it->second.erase(run)) return;
  impl_->RemoveRunSeries(watch, run);
}

void Metrics::SetLoadIncompatible(const std::string& watch, bool incompatible) {
  impl_->load_incompatible.Add({{"watch", watch}}).Set(incompatible ? 1 : 0);
}

void Metrics::SetJudged(const std::string& watch, std::string_view layout,
                        std::string_view verdict) {
  impl_->sets.Add({{"watch", watch}, {"layout", std::string(layout)}, {"verdict", std::string(verdict)}})
      .Increment();
}

void Metrics::SetLastComplete(const std::string& watch, const std::string& run, double unix_seconds) {
  impl_->last_complete.Add(RunLabels(watch, run)).Set(unix_seconds);
}

void Metrics::SetBrokenPointers(const std::string& watch, std::size_t count) {
  impl_->broken_pointers.Add({{"watch", watch}}).Set(static_cast<double>(count));
}

void Metrics::SetProblem(const std::string& watch, std::string_view problem, bool active) {
  impl_->problem.Add({{"watch", watch}, {"problem", std::string(problem)}}).Set(active ? 1 : 0);
}

void Metrics::SetFilesystem(const std::string& watch, std::uint64_t avail, std::uint64_t size) {
  impl_->fs_avail.Add({{"watch", watch}}).Set(static_cast<double>(avail));
  impl_->fs_size.Add({{"watch", watch}}).Set(static_cast<double>(size));
}

void Metrics::Rescanned(const std::string& watch, std::string_view reason) {
  impl_->rescans.Add({{"watch", watch}, {"reason", std::string(reason)}}).Increment();
}

void Metrics::SetQueueLength(std::size_t length) {
  impl_->queue_length.Add({}).Set(static_cast<double>(length));
}

void Metrics::ConfigReloaded(bool ok, double unix_seconds) {
  impl_->reload_ok.Add({}).Set(ok ? 1 : 0);
  if (ok) impl_->reload_time.Add({}).Set(unix_seconds);
}

}  // namespace ckptwatch
