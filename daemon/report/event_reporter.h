// The pipeline's Reporter in the daemon: each domain event (pipeline_events.h) becomes its log
// line and its metrics here, one function per event type — the only place that knows which
// line and which series an event means.
#pragma once

#include <memory>

#include "decide/pipeline_ports.h"
#include "report/event_log.h"
#include "report/metrics.h"

namespace ckptwatch {

class EventReporter : public Reporter {
 public:
  /// `log` is whichever log is open when an event comes (a reload may replace it).
  EventReporter(std::unique_ptr<EventLog>& log, Metrics& metrics) : log_(log), metrics_(metrics) {}
  void Report(PipelineEvent event) override;

 private:
  struct Apply;
  std::unique_ptr<EventLog>& log_;
  Metrics& metrics_;
};

}  // namespace ckptwatch
