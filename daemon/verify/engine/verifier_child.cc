#include "verify/engine/verifier_child.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <new>

#include <nlohmann/json.hpp>

#include "verify/engine/confinement.h"
#include "verify/hdf5/hdf5_handle.h"

namespace ckptwatch {
namespace {

void ApplyLimits(const ChildLimits& limits) {
  // Die with the parent, so a killed daemon leaves no verifier behind.
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(kVerifierChildExitUsage);  // the parent died before prctl
  // The daemon's control signals are the daemon's: a Ctrl-C, a reload or a
  // logrotate SIGUSR1 sent to the process group must not turn an in-flight
  // verification into a false "verifier_crashed". The parent stops us with
  // SIGKILL when it must.
  for (int signum : {SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE}) signal(signum, SIG_IGN);
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);  // a crash on a hostile file must not litter cores
  // An ASan build (GCC's macro; bench/asan-tests.sh) has reserved terabytes of address space
  // for its shadow memory by now: under RLIMIT_AS every later allocation would fail.
#ifndef __SANITIZE_ADDRESS__
  rlimit memory{limits.memory_bytes, limits.memory_bytes};
  setrlimit(RLIMIT_AS, &memory);
#endif
  // CPU time backs up the parent's wall-clock deadline for a spinning parse.
  rlim_t cpu = static_cast<rlim_t>(std::ceil(limits.timeout_seconds)) + 1;
  rlimit cpu_limit{cpu, cpu + 2};
  setrlimit(RLIMIT_CPU, &cpu_limit);
}
}  // namespace

bool ParseVerifierChildArgs(const std::vector<std::string>& args, VerifyOptions* options,
                            ChildLimits* limits, std::string* path, std::string* err) {
  path->clear();
  try {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& arg = args[i];
      if (arg == "--" && i + 2 == args.size()) {
        *path = args[i + 1];
        break;
      }
      if (i + 1 >= args.size()) throw std::invalid_argument(arg);
      const std::string& value = args[++i];
      if (arg == "--level") {
        auto level = ParseLevel(value);
        if (!level) throw std::invalid_argument(value);
        options->level = *level;
      } else if (arg == "--full-max-bytes") {
        options->full_max_bytes = std::stoull(value);
      } else if (arg == "--memory-budget") {
        options->memory_budget = std::stoull(value);
      } else if (arg == "--timeout") {
        limits->timeout_seconds = std::stod(value);
      } else if (arg == "--memory-bytes") {
        limits->memory_bytes = std::stoull(value);
      } else {
        throw std::invalid_argument(arg);
      }
    }
  } catch (const std::exception& e) {
    *err = std::string("bad argument ") + e.what();
    return false;
  }
  if (path->empty()) return (*err = "no file name", false);
  return true;
}

int VerifierChildMain(const std::vector<std::string>& args) {
  // Before anything else: descriptor 3 is a checkpoint the daemon could read and this uid
  // perhaps cannot. While the process is dumpable, any process of the same uid may open
  // /proc/<pid>/fd/3 or read /proc/<pid>/mem (exec made a spawned child dumpable again).
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  VerifyOptions options;
  ChildLimits limits;
  std::string path, error;
  if (!ParseVerifierChildArgs(args, &options, &limits, &path, &error)) {
    std::cerr << "ckptwatch " << kVerifierChildCommand << ": " << error << "\n";
    return kVerifierChildExitUsage;
  }
  ApplyLimits(limits);
  // Everything that may open a file (libhdf5's start-up) happens before the
  // filter; after it only kVerifierChildFd can be read.
  InitHdf5ErrorHandling();
  std::string confine_error;
  if (!ConfineVerifier(kVerifierChildFd, &confine_error)) {
    std::cerr << "cannot confine the verifier: " << confine_error << "\n";
    return kVerifierChildExitUsage;
  }
  try {
    VerifyResult result = VerifyOpenFile(kVerifierChildFd, path, options);
    std::cout << ToJson(result).dump() << std::endl;
    // The verdict is out. libhdf5's exit-time teardown can still crash on a
    // malformed file (cve-2024-32609 does), which would turn a precise verdict
    // into "verifier_crashed": skip it.
    std::_Exit(0);
  } catch (const std::bad_alloc&) {
    std::cerr << "out of memory\n";
    return kVerifierChildExitOutOfMemory;
  }
}
}  // namespace ckptwatch
