// What `ckptwatch run` checks before it starts, beyond loading the config: shared with
// `ckptwatch check-config`, so a config that passes one does not fail the other.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace ckptwatch {

/// One reason the daemon would not start: the config key at fault and why.
struct StartProblem {
  std::string key;      ///< "metrics.basic_auth.password_file"
  std::string message;  ///< Starts with the key: "metrics.basic_auth.password_file: cannot …"
  bool operator==(const StartProblem&) const = default;
};

/// Every start check, without side effects (nothing is created, bound or written): log.file
/// can be written (EventLog::CheckWritable), metrics.listen resolves and
/// metrics.basic_auth.password_file reads (PrepareMetricsEndpoint). Users and groups
/// (writer, readers) and the listen syntax are checked when the config loads. Not checked:
/// whether the metrics port is free — the running daemon holds it when check-config runs.
std::vector<StartProblem> CheckStart(const Config& config);

/// CheckStart() as LoadConfigFile()'s check: `check-config` reports these with the file's own
/// errors, each at its key's line:column.
std::vector<ConfigProblem> CheckStartAsConfigProblems(const Config& config);

/// Where the kernel says whether hard links to files one cannot read are refused.
inline constexpr char kProtectedHardlinksFile[] = "/proc/sys/fs/protected_hardlinks";

/// A warning for the log when `sysctl_file` (kProtectedHardlinksFile) says 0; empty when it
/// says anything else or cannot be read. Not a start problem: the daemon withholds what such
/// links would disclose (link_disclosure.h), but one case is left that only the sysctl closes.
std::string HardlinkProtectionWarning(const std::string& sysctl_file);

/// "SOURCE: message" per problem, one per line.
std::string DescribeStartProblems(const std::string& source,
                                  const std::vector<StartProblem>& problems);

}  // namespace ckptwatch
