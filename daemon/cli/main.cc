// ckptwatch: the command people and scripts run. `verify` and `latest` run in this small binary — no
// libhdf5, libzip, spdlog or Prometheus to load, so a process that checks headers starts in
// about a millisecond; what needs libhdf5 or libzip runs in a confined child of the engine,
// as it always did. Every other command is the engine's: exec'd in place, same pid, same
// arguments (the daemon under systemd is the engine after this exec).
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/engine_path.h"
#include "cli/verify_command.h"
#include "cli/latest_command.h"

int main(int argc, char** argv) {
  using namespace ckptwatch;
  const std::string engine = FindEngine();
  if (argc >= 2 && std::strcmp(argv[1], "verify") == 0)
    return RunVerifyCommand(std::vector<std::string>(argv + 2, argv + argc), std::cout, std::cerr, engine);
  if (argc >= 2 && std::strcmp(argv[1], "latest") == 0)
    return RunLatestCommand(std::vector<std::string>(argv + 2, argv + argc), std::cout, std::cerr, engine);
  execv(engine.c_str(), argv);
  std::cerr << "ckptwatch: cannot run " << engine << ": " << std::strerror(errno)
            << " (ckptwatch looks for its engine beside itself, then in ../lib/ckptwatch/)\n";
  return 127;
}
