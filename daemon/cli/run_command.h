// `ckptwatch run` and `ckptwatch check-config`.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace ckptwatch {

/// Where `run` looks for a config when --config is not given.
inline constexpr char kDefaultConfigPath[] = "/etc/ckptwatch/ckptwatch.yaml";

/// `ckptwatch run [--config FILE]`: the daemon, in the foreground. Without
/// --config and without kDefaultConfigPath, the embedded default (watch
/// ./checkpoints, created if missing). Exit 2 on a bad config.
int RunRunCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

/// `ckptwatch check-config FILE`: validates and prints the effective config.
/// Exit 0 when valid, 2 when not.
int RunCheckConfigCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ckptwatch
