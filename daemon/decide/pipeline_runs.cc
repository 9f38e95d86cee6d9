// Runs in the pipeline: each watch's RunTracker (run_tracker.h) decides which runs have series;
// here what it says goes to the reporter, and log lines get their run.
#include <algorithm>

#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"

namespace ckptwatch {

void Pipeline::ReportRuns(std::vector<PipelineEvent> events) {
  for (PipelineEvent& event : events) reporter_.Report(std::move(event));
}

void Pipeline::AddRunField(EventFields* fields) const {
  auto watch = std::find_if(fields->begin(), fields->end(),
                            [](const auto& f) { return f.first == "watch"; });
  auto path = std::find_if(fields->begin(), fields->end(),
                           [](const auto& f) { return f.first == "path"; });
  if (watch == fields->end() || path == fields->end()) return;
  auto w = watches_.find(watch->second);
  if (w == watches_.end()) return;
  std::string run = w->second->runs.Of(path->second);
  if (!run.empty()) fields->insert(watch + 1, {"run", std::move(run)});
}

}  // namespace ckptwatch
