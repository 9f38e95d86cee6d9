#include "start_checks.h"

#include "event_log.h"
#include "metrics.h"

namespace ckptwatch {

std::vector<StartProblem> CheckStart(const Config& config) {
  std::vector<StartProblem> problems;
  std::string err;
  if (!config.log.file.empty() && !EventLog::CheckWritable(config.log.file, &err))
    problems.push_back({"log.file", "log.file: " + err});
  MetricsEndpoint endpoint;
  std::string key;
  if (!PrepareMetricsEndpoint(config.metrics, &endpoint, &key, &err))
    problems.push_back({key, key + ": " + err});
  return problems;
}

std::string DescribeStartProblems(const std::string& source,
                                  const std::vector<StartProblem>& problems) {
  std::string text;
  for (const StartProblem& p : problems) text += source + ": " + p.message + "\n";
  return text;
}

}  // namespace ckptwatch
