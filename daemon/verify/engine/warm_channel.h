// The channel between a warm verifier (warm_verifier.cc) and whoever feeds it files: the daemon's
// queue (verify_queue_warm.cc) or `ckptwatch verify -j` (warm_cli.cc). One SOCK_SEQPACKET
// socket (packet_socket.h); each job is one datagram with the file and the job's stdout/stderr pipes attached
// (SCM_RIGHTS), each answer one fixed-size report. No libhdf5 here: the light `ckptwatch` front
// links this file.
//
// Why a verifier may be warm at all (docs/security.md, "Warm verifiers"): a file's owner can make
// its verdict say anything by choosing its bytes, so a verifier subverted by one of U's files
// gains nothing U did not have — as long as it never sees a file of another owner. A warm
// verifier therefore serves one owner (st_uid) only, and reports every uid it has seen.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ckptwatch {

/// The hidden subcommand that runs WarmVerifierMain() (the CLI spawns it; the zygote forks it).
inline constexpr std::string_view kWarmVerifierCommand = "__verify-warm";
/// The warm verifier's end of its channel. 3 is the file of the job at hand, as in a one-shot
/// child; 0 is /dev/null; 1 and 2 are the job's pipes, closed between jobs unless the feeder
/// asked it to keep them (WarmOutput::kKeep).
inline constexpr int kWarmChannelFd = 4;
/// Files one of the daemon's warm verifiers verifies before it is replaced (`ckptwatch verify`,
/// whose replacement is an exec, not a fork: kCliWarmMaxFiles in cli/verify_command.cc).
inline constexpr std::size_t kWarmDefaultMaxFiles = 64;
/// How long an idle warm verifier is kept.
inline constexpr std::uint64_t kWarmIdleMs = 30000;
/// A warm verifier's successor is forked when it has this many files left.
inline constexpr std::size_t kSuccessorLead = 16;
/// Most uids a report lists; a verifier that saw more than one is killed anyway.
inline constexpr std::size_t kWarmReportUids = 4;

/// The job of the report a verifier forked by the zygote sends once it warmed up (warm_up.h)
/// and confined itself, before any file: it is ready, and has seen no owner (uid_count 0).
inline constexpr std::uint64_t kWarmReadyJob = 0;

/// What a warm verifier says after each job, once the job's stdout and stderr are closed.
struct WarmReport {
  std::uint64_t job = 0;  ///< Never kWarmReadyJob for a file.
  pid_t pid = 0;  ///< Its own pid as it says (for logs only).
  /// It leaves after this job (N files done, a verdict other than ok, a libhdf5 handle still
  /// open): the feeder must not send it another.
  bool retiring = false;
  /// Every owner (st_uid) of a file it was handed since it started; `uid_count` may exceed the
  /// listed ones.
  std::uint32_t uid_count = 0;
  std::vector<uid_t> uids;
};

/// The warm verifier's start arguments (after the subcommand): its limits and file budget.
std::vector<std::string> WarmVerifierArgs(double timeout_seconds, std::uint64_t memory_bytes,
                                          std::size_t max_files);

/// Where a job's output goes (SendWarmJob()).
enum class WarmOutput {
  /// `out_fd` and `err_fd` are this job's alone: the verifier closes them after it (the CLI
  /// waits for their end of file).
  kThisJob,
  /// `out_fd` and `err_fd` stay the verifier's stdout and stderr for the jobs after this one,
  /// which bring the file alone: two pipes per verifier, not per file (the daemon; a report
  /// says a job's output is all written).
  kKeep,
  /// The file alone: the output goes to what an earlier job with kKeep brought.
  kKept,
};

/// Asks the warm verifier on `channel` to verify `file_fd` as job `job`, with `child_args`
/// (VerifierChildArgv() after the subcommand; its limits must be the verifier's), writing its
/// JSON line to `out_fd` and its complaints to `err_fd` (unused with kKept). Descriptors are
/// copied.
bool SendWarmJob(int channel, std::uint64_t job, const std::vector<std::string>& child_args,
                 int file_fd, int out_fd, int err_fd, WarmOutput output, std::string* err);

/// The verifier's side: parses a job datagram (SendWarmJob()). False when malformed.
bool ParseWarmJob(const std::vector<char>& datagram, std::uint64_t* job,
                  std::vector<std::string>* args, WarmOutput* output);

/// The verifier's side: one report.
bool SendWarmReport(int channel, const WarmReport& report);

/// Reads one report from the non-blocking `channel`. 1: `*report` filled; 0: nothing now;
/// -1: the verifier is gone (end of file, an error or a malformed report).
int ReadWarmReport(int channel, WarmReport* report);

}  // namespace ckptwatch
