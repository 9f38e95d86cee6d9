#include "core/start_checks.h"

#include <fstream>

#include "report/event_log.h"
#include "report/metrics.h"

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

std::vector<ConfigProblem> CheckStartAsConfigProblems(const Config& config) {
  std::vector<ConfigProblem> out;
  for (const StartProblem& p : CheckStart(config)) {
    const std::string prefix = p.key + ": ";
    out.push_back({p.key, p.message.compare(0, prefix.size(), prefix) == 0
                              ? p.message.substr(prefix.size())
                              : p.message});
  }
  return out;
}

std::string HardlinkProtectionWarning(const std::string& sysctl_file) {
  std::ifstream in(sysctl_file);
  std::string value;
  if (!(in >> value) || value != "0") return "";
  return "fs.protected_hardlinks is 0: anyone who can write a watched directory can hard-link "
         "into it a file they cannot read. Such a file (more than one name) is not read unless "
         "that discloses nothing (verdict permission_denied), but once its other name is removed "
         "it has one name and is verified like any file; set fs.protected_hardlinks=1 (sysctl)";
}

std::string DescribeStartProblems(const std::string& source,
                                  const std::vector<StartProblem>& problems) {
  std::string text;
  for (const StartProblem& p : problems) text += source + ": " + p.message + "\n";
  return text;
}

}  // namespace ckptwatch
