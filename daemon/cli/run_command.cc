#include "cli/run_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ostream>

#include "config/config.h"
#include "core/daemon.h"
#include "core/start_checks.h"
#include "report/event_log.h"

namespace ckptwatch {
namespace {

constexpr char kRunUsage[] =
    "usage: ckptwatch run [--config FILE]\n"
    "\n"
    "Watches the configured checkpoint directories and verifies every weight file\n"
    "written there; runs in the foreground until SIGTERM/SIGINT.\n"
    "Without --config: /etc/ckptwatch/ckptwatch.yaml if it exists, else an embedded\n"
    "default that watches ./checkpoints (created if missing).\n"
    "Signals: SIGHUP reloads the config, SIGUSR1 reopens the log file.\n";

constexpr char kCheckUsage[] =
    "usage: ckptwatch check-config FILE\n"
    "\n"
    "Validates FILE and prints the effective configuration (defaults filled in).\n"
    "Makes every check `ckptwatch run` makes at start: log.file can be written,\n"
    "metrics.listen resolves, metrics.basic_auth.password_file can be read, the\n"
    "users and groups named exist. Run it as the user the daemon runs as.\n"
    "Exit status: 0 valid, 2 invalid.\n";

}  // namespace

int RunCheckConfigCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    out << kCheckUsage;
    return 0;
  }
  if (args.size() != 1 || args[0].empty() || args[0][0] == '-') {
    err << "ckptwatch check-config: expected one FILE\n\n" << kCheckUsage;
    return 2;
  }
  Config config;
  std::string error;
  // The start checks run with the loader, so every error is reported in one pass, in file order.
  if (!LoadConfigFile(args[0], &config, &error, CheckStartAsConfigProblems)) {
    err << error << (error.empty() || error.back() != '\n' ? "\n" : "");
    return 2;
  }
  out << DescribeEffectiveConfig(config);
  return 0;
}

int RunRunCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string config_path;
  bool explicit_config = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out << kRunUsage;
      return 0;
    } else if (arg == "--config" && i + 1 < args.size()) {
      config_path = args[++i];
      explicit_config = true;
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
      explicit_config = true;
    } else {
      err << "ckptwatch run: unexpected argument '" << arg << "'\n\n" << kRunUsage;
      return 2;
    }
  }
  if (!explicit_config && access(kDefaultConfigPath, F_OK) == 0) config_path = kDefaultConfigPath;

  Config config;
  std::string error;
  if (config_path.empty()) {
    config = DefaultConfig();
    for (const WatchConfig& watch : config.watches) {
      std::error_code ec;
      std::filesystem::create_directories(watch.path, ec);
      if (ec) {
        err << "ckptwatch run: cannot create " << watch.path << ": " << ec.message() << "\n";
        return 2;
      }
    }
  } else if (!LoadConfigFile(config_path, &config, &error)) {
    err << error << (error.empty() || error.back() != '\n' ? "\n" : "");
    return 2;
  }
  // Before opening it, so the words are check-config's (open() would only say ENOENT for /proc).
  if (!config.log.file.empty() && !EventLog::CheckWritable(config.log.file, &error)) {
    err << "ckptwatch run: log.file: " << error << "\n";
    return 2;
  }
  std::unique_ptr<EventLog> log = EventLog::Open(config.log.file, config.log.format, config.log.level, &error);
  if (!log) {
    err << "ckptwatch run: " << error << "\n";
    return 2;
  }
  // What check-config checks, in the same words; the log file has just been opened.
  if (const std::vector<StartProblem> problems = CheckStart(config); !problems.empty()) {
    for (const StartProblem& p : problems)
      log->WriteErrorAlsoToStderr(LogEvent::kStartFailed, {{"key", p.key}}, p.message);
    return 2;
  }
  return RunDaemon(config, config_path, std::move(log));
}

}  // namespace ckptwatch
