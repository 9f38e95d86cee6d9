// The daemon's Prometheus metrics, declared in one place (docs/metrics.md),
// served on metrics.listen at /metrics by MetricsServer (metrics_server.h).
// Labels are bounded: a watch name and small enums, never a file path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "decide/watch_problem.h"
#include "verify/verdict.h"

namespace ckptwatch {

/// The problems a watch can be in (ckptwatch_watch_problem{problem=…}).
class Metrics {
 public:
  /// Serves /metrics on `config.listen` (with basic auth when configured).
  /// nullptr with `*err` set, and the config key at fault in `*key`, when
  /// PrepareMetricsEndpoint() fails or the address is taken.
  static std::unique_ptr<Metrics> Start(const MetricsConfig& config, std::string* key,
                                        std::string* err);
  ~Metrics();

  /// The port actually bound (useful with port 0 in tests).
  int port() const;

  void SetBuildInfo(const std::string& version, const std::string& hdf5_version);
  /// A watch exists (ckptwatch_watch_info); creates its per-watch series at 0.
  void AddWatch(const std::string& watch, const std::string& path, std::string_view backend);
  /// A watch was removed by a reload: its series go away.
  void RemoveWatch(const std::string& watch);

  /// One verdict (not a superseded one).
  void Verified(const std::string& watch, Verdict verdict, Level level, double seconds,
                std::uint64_t bytes);
  /// One broken checkpoint, by its cause. A non-empty `run` is the series' `run` label
  /// (here and below); an empty one is no label.
  void SaveFailed(const std::string& watch, const std::string& run, std::string_view cause);
  void SetLastGood(const std::string& watch, const std::string& run, double unix_seconds,
                   std::uint64_t bytes);
  void SetLastCheckpointOk(const std::string& watch, const std::string& run, bool ok);
  /// ckptwatch_last_save_attempt_timestamp_seconds: a verdict, good or failed, at `unix_seconds`.
  void SetLastSaveAttempt(const std::string& watch, const std::string& run, double unix_seconds);
  /// ckptwatch_failing_files: files whose latest verdict is a failed save of `cause`, now.
  void SetFailingFiles(const std::string& watch, const std::string& run, std::string_view cause,
                       std::size_t count);
  /// A run of `watch` appeared: its failure series exist from now, at 0.
  void AddRun(const std::string& watch, const std::string& run);
  /// A run expired: its series go away (RemoveWatch() removes every run's).
  void RemoveRun(const std::string& watch, const std::string& run);
  /// ckptwatch_checkpoint_load_incompatible: 1 when the newest ok checkpoint will not load.
  void SetLoadIncompatible(const std::string& watch, bool incompatible);
  /// One checkpoint set judged (ckptwatch_checkpoint_sets_total; docs/checkpoint-sets.md).
  void SetJudged(const std::string& watch, std::string_view layout, std::string_view verdict);
  /// ckptwatch_last_complete_checkpoint_timestamp_seconds: a set of `run` judged complete.
  void SetLastComplete(const std::string& watch, const std::string& run, double unix_seconds);
  /// ckptwatch_resume_pointers_broken: pointers of `watch` naming a missing or broken set now.
  void SetBrokenPointers(const std::string& watch, std::size_t count);
  void SetProblem(const std::string& watch, std::string_view problem, bool active);
  void SetFilesystem(const std::string& watch, std::uint64_t avail_bytes, std::uint64_t size_bytes);
  void Rescanned(const std::string& watch, std::string_view reason);
  void SetQueueLength(std::size_t length);
  void ConfigReloaded(bool ok, double unix_seconds);

 private:
  struct Impl;
  explicit Metrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Where and how Start() serves: the host to bind (brackets off), the port, the password.
struct MetricsEndpoint {
  std::string host;
  int port = 0;
  std::string password;  ///< The first line of basic_auth.password_file; empty without auth.
};

/// Every check Start() makes before it binds, without binding: `listen` is host:port and its
/// host resolves, the password file can be read. false with `*err` saying why and `*key`
/// naming the config key at fault. `check-config` makes the same checks.
bool PrepareMetricsEndpoint(const MetricsConfig& config, MetricsEndpoint* out, std::string* key,
                            std::string* err);

}  // namespace ckptwatch
