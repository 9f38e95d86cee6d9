// ckptwatch-engine: every ckptwatch command — the daemon, check-config, status, verify, and
// the verifier's child and zygote. `ckptwatch` (main.cc) runs `verify` itself and execs this
// for the rest.
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/run_command.h"
#include "cli/status_command.h"
#include "cli/verify_command.h"
#include "verify/engine/verifier_child.h"
#include "verify/engine/verifier_zygote.h"
#include "verify/engine/warm_channel.h"
#include "verify/engine/warm_verifier.h"
#include "verify/hdf5/hdf5_inspector.h"

namespace {

constexpr char kEngineUsage[] =
    "usage: ckptwatch COMMAND [ARGS...]\n"
    "\n"
    "Commands:\n"
    "  run [--config FILE]   watch checkpoint directories (the daemon; foreground)\n"
    "  verify PATH...        verify weight files now and exit (ckptwatch verify --help)\n"
    "  check-config FILE     validate a config file and print the effective config\n"
    "  status [--json]       what the running daemon sees: failing files, last good, problems\n"
    "\n"
    "Options:\n"
    "  --help, -h            show this help\n"
    "  --version             show the version and the HDF5 library version\n";

}  // namespace

int main(int argc, char** argv) {
  // First, before any socket or pipe exists: a status or metrics client that
  // hangs up mid-answer must cost a write EPIPE, never the daemon (and with it
  // the zygote and every alarm). Children inherit SIG_IGN across exec too.
  signal(SIGPIPE, SIG_IGN);
  using namespace ckptwatch;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kEngineUsage;
    return 2;
  }
  const std::string command = args.front();
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kEngineUsage;
    return 0;
  }
  if (command == "--version" || command == "version") {
    std::cout << "ckptwatch " << CKPTWATCH_VERSION << " (HDF5 " << Hdf5LibraryVersion() << ")\n";
    return 0;
  }
  if (command == "verify") return RunVerifyCommand(rest, std::cout, std::cerr, SelfExecutable());
  if (command == "run") return RunRunCommand(rest, std::cout, std::cerr);
  if (command == "check-config") return RunCheckConfigCommand(rest, std::cout, std::cerr);
  if (command == "status") return RunStatusCommand(rest, std::cout, std::cerr);
  if (command == kVerifierChildCommand) return VerifierChildMain(rest);
  if (command == kVerifierZygoteCommand) return VerifierZygoteMain(rest);
  if (command == kWarmVerifierCommand) return WarmVerifierMain(rest);
  std::cerr << "ckptwatch: unknown command '" << command << "'\n\n" << kEngineUsage;
  return 2;
}
