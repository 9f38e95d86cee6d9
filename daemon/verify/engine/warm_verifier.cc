#include "verify/engine/warm_verifier.h"

#include <fcntl.h>
#include <hdf5.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <new>
#include <set>

#include <nlohmann/json.hpp>

#include "verify/engine/confinement.h"
#include "verify/engine/packet_socket.h"
#include "verify/engine/verifier_child.h"
#include "verify/engine/warm_channel.h"
#include "verify/engine/warm_up.h"
#include "verify/hdf5/hdf5_handle.h"
#include "verify/hdf5/hdf5_inspector.h"

namespace ckptwatch {
namespace {

constexpr std::size_t kMaxJobBytes = 64u << 10;

struct WarmArgs {
  ChildLimits limits;
  std::size_t max_files = kWarmDefaultMaxFiles;
};

bool ParseWarmArgs(const std::vector<std::string>& args, WarmArgs* out, std::string* err) {
  try {
    for (std::size_t i = 0; i < args.size(); i += 2) {
      if (i + 1 >= args.size()) throw std::invalid_argument(args[i]);
      const std::string& value = args[i + 1];
      if (args[i] == "--timeout")
        out->limits.timeout_seconds = std::stod(value);
      else if (args[i] == "--memory-bytes")
        out->limits.memory_bytes = std::stoull(value);
      else if (args[i] == "--max-files")
        out->max_files = std::stoull(value);
      else
        throw std::invalid_argument(args[i]);
    }
  } catch (const std::exception& e) {
    *err = std::string("bad argument ") + e.what();
    return false;
  }
  if (out->max_files == 0) return (*err = "--max-files must be at least 1", false);
  return true;
}

rlim_t CpuBudget(const ChildLimits& limits) {
  return static_cast<rlim_t>(std::ceil(limits.timeout_seconds)) + 1;
}

// What a one-shot child's ApplyLimits() does, with a CPU hard limit for all its files: each
// file then gets the one-shot child's budget as a soft limit over what was used before it.
void ApplyWarmLimits(const WarmArgs& args) {
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(kVerifierChildExitUsage);
  for (int signum : {SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE}) signal(signum, SIG_IGN);
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
#ifndef __SANITIZE_ADDRESS__
  rlimit memory{args.limits.memory_bytes, args.limits.memory_bytes};
  setrlimit(RLIMIT_AS, &memory);
#endif
  const rlim_t budget = CpuBudget(args.limits);
  rlimit cpu{budget, budget * args.max_files + 2};
  setrlimit(RLIMIT_CPU, &cpu);
}

// Restarts the CPU budget for the next file: soft limit = CPU used so far + one file's budget.
void RestartCpuBudget(const ChildLimits& limits) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto used = static_cast<rlim_t>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1);
  rlimit cpu{};
  getrlimit(RLIMIT_CPU, &cpu);
  cpu.rlim_cur = std::min(used + CpuBudget(limits), cpu.rlim_max);
  setrlimit(RLIMIT_CPU, &cpu);
}

// Puts the job's stdout, stderr and file at 1, 2 and 3. They arrived at the lowest free numbers
// (1-3, or above 4), in any order relative to their targets: moved above 4 first, then down.
bool InstallJobFds(const std::vector<int>& received) {
  int high[3];
  for (int i = 0; i < 3; ++i) {
    high[i] = fcntl(received[i], F_DUPFD_CLOEXEC, kWarmChannelFd + 1);
    if (high[i] < 0) return false;
  }
  for (int fd : received) close(fd);
  for (int fd : {STDOUT_FILENO, STDERR_FILENO, kVerifierChildFd}) close(fd);
  // file, stdout, stderr as sent (SendWarmJob) onto 3, 1, 2.
  const int targets[3] = {kVerifierChildFd, STDOUT_FILENO, STDERR_FILENO};
  for (int i = 0; i < 3; ++i) {
    if (fcntl(high[i], F_DUPFD, targets[i]) != targets[i]) return false;
    close(high[i]);
  }
  return true;
}

// The job brought its file alone (WarmOutput::kKept): onto 3, beside the stdout and stderr an
// earlier job left.
bool InstallJobFile(int received) {
  if (received == kVerifierChildFd) return true;
  close(kVerifierChildFd);
  const int at = fcntl(received, F_DUPFD, kVerifierChildFd);
  close(received);
  return at == kVerifierChildFd;
}

bool JobWaiting() {
  pollfd channel{kWarmChannelFd, POLLIN, 0};
  return poll(&channel, 1, 0) > 0;
}

// After the verdict: nothing of the file stays reachable through a descriptor. The output
// pipes stay when the feeder asked for that (they carry nothing of the file once written).
void CloseJobFds(bool keep_output) {
  std::cout.flush();
  close(kVerifierChildFd);
  if (keep_output) return;
  for (int fd : {STDOUT_FILENO, STDERR_FILENO}) close(fd);
}

}  // namespace

int WarmVerifierMain(const std::vector<std::string>& args) {
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  WarmArgs warm;
  std::string error;
  if (!ParseWarmArgs(args, &warm, &error)) {
    std::cerr << "ckptwatch " << kWarmVerifierCommand << ": " << error << "\n";
    return kVerifierChildExitUsage;
  }
  ApplyWarmLimits(warm);
  InitHdf5ErrorHandling();
  // Forked ahead of its first file by the zygote: warmed up while none waits for it, before
  // confinement closes the warm-up file (warm_up.h). One forked for a file that is already
  // waiting verifies it at once: a warm-up would only delay it (a burst). One that cannot warm
  // up still verifies, only its first file more slowly.
  const bool warm_up = HasWarmUpFd() && !JobWaiting();
  if (warm_up && !WarmUp(VerifyOptions{}, &error))
    std::cerr << "ckptwatch " << kWarmVerifierCommand << ": warm-up: " << error << "\n";
  if (!ConfineWarmVerifier(kWarmChannelFd, &error)) {
    std::cerr << "cannot confine the verifier: " << error << "\n";
    return kVerifierChildExitUsage;
  }
  if (warm_up) {
    WarmReport ready;
    ready.job = kWarmReadyJob;
    ready.pid = getpid();
    if (!SendWarmReport(kWarmChannelFd, ready)) std::_Exit(0);  // the feeder is gone
  }
  std::set<uid_t> owners;
  std::vector<char> buffer;
  std::vector<int> fds;
  bool output_kept = false;  // 1 and 2 are pipes an earlier job asked to keep
  for (std::size_t files = 0;;) {
    buffer.assign(kMaxJobBytes, 0);
    const int rc = ReceiveWithFds(kWarmChannelFd, &buffer, &fds, 0);
    if (rc == 0) std::_Exit(0);  // the feeder closed the channel: idle, or stopping
    if (rc < 0) std::_Exit(kVerifierChildExitUsage);
    std::uint64_t job = 0;
    std::vector<std::string> job_args;
    VerifyOptions options;
    ChildLimits ignored;
    std::string path;
    WarmOutput output = WarmOutput::kThisJob;
    const bool parsed = ParseWarmJob(buffer, &job, &job_args, &output);
    const std::size_t want_fds = output == WarmOutput::kKept ? 1 : 3;
    if (!parsed || fds.size() != want_fds || (output == WarmOutput::kKept && !output_kept) ||
        !ParseVerifierChildArgs(job_args, &options, &ignored, &path, &error)) {
      for (int fd : fds) close(fd);
      std::_Exit(kVerifierChildExitUsage);  // the feeder is ours: a malformed job is a bug, not a file
    }
    struct stat st {};
    const bool stat_ok = fstat(fds[0], &st) == 0;
    if (stat_ok) owners.insert(st.st_uid);
    if (!(want_fds == 1 ? InstallJobFile(fds[0]) : InstallJobFds(fds)))
      std::_Exit(kVerifierChildExitUsage);
    output_kept = output != WarmOutput::kThisJob;
    WarmReport report;
    report.job = job;
    report.pid = getpid();
    report.uid_count = static_cast<std::uint32_t>(owners.size());
    for (uid_t uid : owners)
      if (report.uids.size() < kWarmReportUids) report.uids.push_back(uid);
    if (!stat_ok || owners.size() > 1) {
      // Never read a second owner's file: the feeder has a bug. Say so, and leave.
      std::cerr << "the warm verifier was handed files of " << owners.size()
                << " owners; it verifies one owner's files only\n";
      CloseJobFds(false);
      report.retiring = true;
      SendWarmReport(kWarmChannelFd, report);
      std::_Exit(kVerifierChildExitUsage);
    }
    RestartCpuBudget(warm.limits);
    std::cout.clear();
    std::cerr.clear();
    bool clean = false;
    const std::uint64_t inspected_before = Hdf5FilesInspected();
    try {
      VerifyResult result = VerifyOpenFile(kVerifierChildFd, path, options);
      std::cout << ToJson(result).dump() << std::endl;
      // libhdf5's state is suspect after it failed on a file, not after our own readers
      // (torch, safetensors, the header check) refused one: those keep nothing between files.
      clean = result.verdict == Verdict::kOk || result.verdict == Verdict::kNonfinite ||
              Hdf5FilesInspected() == inspected_before;
    } catch (const std::bad_alloc&) {
      std::cerr << "out of memory\n";
      std::_Exit(kVerifierChildExitOutOfMemory);  // the heap may be in any state: leave
    }
    // Every libhdf5 handle of the file must be closed by now; one that is not would keep its
    // data reachable in the next file's verification.
    const bool handles_closed = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0;
    CloseJobFds(output_kept);
    report.retiring = ++files >= warm.max_files || !clean || !handles_closed;
    if (!SendWarmReport(kWarmChannelFd, report) || report.retiring) std::_Exit(0);
  }
}

}  // namespace ckptwatch
