#include "report/event_reporter.h"

#include <string>
#include <utility>

namespace ckptwatch {

struct EventReporter::Apply {
  EventLog& log;
  Metrics& metrics;

  void operator()(Logged& e) const {
    log.Write(e.level, e.event, std::move(e.fields), std::move(e.message));
  }
  void operator()(VerdictReached& e) const {
    if (e.line) (*this)(*e.line);
    metrics.Verified(e.watch, e.verdict, e.level, e.seconds, e.bytes);
    metrics.SetLastCheckpointOk(e.watch, e.run, e.cause.empty());
    if (e.load) metrics.SetLoadIncompatible(e.watch, *e.load == LoadOutcome::kIncompatible);
    if (e.good_unix) metrics.SetLastGood(e.watch, e.run, *e.good_unix, e.bytes);
    metrics.SetLastSaveAttempt(e.watch, e.run, e.unix);
    if (!e.cause.empty()) metrics.SaveFailed(e.watch, e.run, e.cause);
  }
  void operator()(CheckpointJudged& e) const {
    (*this)(e.line);
    if (!e.pointer) metrics.SetJudged(e.watch, e.layout, e.verdict);
    if (e.complete_unix) metrics.SetLastComplete(e.watch, e.run, *e.complete_unix);
    if (!e.cause.empty()) metrics.SaveFailed(e.watch, e.run, e.cause);
  }
  void operator()(ResumePointersBroken& e) const { metrics.SetBrokenPointers(e.watch, e.count); }
  void operator()(LastGoodRestored& e) const {
    metrics.SetLastGood(e.watch, e.run, e.unix_seconds, e.bytes);
  }
  void operator()(ProblemChanged& e) const {
    const std::string name(WatchProblemName(e.problem));
    metrics.SetProblem(e.watch, name, e.active);
    switch (e.change) {
      case ProblemChanged::Change::kStarted:
        log.Write(e.problem == WatchProblem::kMissingDirectory ? LogLevel::kWarn : LogLevel::kError,
                  LogEvent::kProblem, {{"watch", e.watch}, {"problem", name}, {"path", e.path}},
                  std::move(e.reason));
        break;
      case ProblemChanged::Change::kCleared:
        log.Write(LogLevel::kInfo, LogEvent::kProblemCleared,
                  {{"watch", e.watch}, {"problem", name}, {"path", e.path}});
        break;
      case ProblemChanged::Change::kNone:
        break;
    }
  }
  void operator()(WatchBackendChanged& e) const { metrics.AddWatch(e.watch, e.path, e.backend); }
  void operator()(WatchRemoved& e) const {
    metrics.RemoveWatch(e.watch);
    log.Write(LogLevel::kInfo, LogEvent::kWatchRemoved, {{"watch", e.watch}, {"path", e.path}});
  }
  void operator()(FailingFilesChanged& e) const {
    metrics.SetFailingFiles(e.watch, e.run, e.cause, e.count);
  }
  void operator()(RunAdded& e) const { metrics.AddRun(e.watch, e.run); }
  void operator()(RunRemoved& e) const {
    metrics.RemoveRun(e.watch, e.run);
    if (!e.expired_for) return;
    log.Write(LogLevel::kInfo, LogEvent::kRunExpired,
              {{"watch", e.watch}, {"run", e.run}, {"new_run", *e.expired_for}},
              "more than max_runs (" + std::to_string(e.max_runs) +
                  ") runs: the series of the least recently active run are removed until its "
                  "next checkpoint");
  }
  void operator()(Rescanned& e) const {
    metrics.Rescanned(e.watch, ScanReasonName(e.reason));
    if (!e.files) return;
    log.Write(LogLevel::kWarn, LogEvent::kRescan,
              {{"watch", e.watch},
               {"reason", std::string(ScanReasonName(e.reason))},
               {"files", std::to_string(*e.files)},
               {"changed", std::to_string(e.changed.value_or(0))}});
  }
  void operator()(FilesystemSpace& e) const { metrics.SetFilesystem(e.watch, e.avail, e.size); }
  void operator()(QueueLengthChanged& e) const { metrics.SetQueueLength(e.length); }
};

void EventReporter::Report(PipelineEvent event) { std::visit(Apply{*log_, metrics_}, event); }

}  // namespace ckptwatch
