// The isolated verifier: libhdf5 is not hardened against malformed files, so
// every parse runs in a child process with CPU, memory and wall-clock limits.
// A crash or hang costs one verdict, never the caller. The child's side is verifier_child.cc
// (links libhdf5); the parent's, verifier_child_spawn.cc (does not).
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "verify/verifier.h"

namespace ckptwatch {

struct ChildLimits {
  double timeout_seconds = 300;                          ///< Wall clock; also bounds CPU time.
  std::uint64_t memory_bytes = std::uint64_t{2} << 30;  ///< RLIMIT_AS of the child.

  bool operator==(const ChildLimits&) const = default;
};

/// The hidden subcommand that runs VerifyOpenFile() in the child.
inline constexpr std::string_view kVerifierChildCommand = "__verify-child";
/// The descriptor the child verifies: the parent opens the checkpoint and
/// passes it here; the child never opens anything (see confinement.h).
inline constexpr int kVerifierChildFd = 3;
/// The child's exit status when it ran out of memory (std::bad_alloc under RLIMIT_AS).
inline constexpr int kVerifierChildExitOutOfMemory = 3;
/// The exit status of a verifier (one-shot or warm) started wrongly: bad arguments, its parent
/// gone before it could ask to die with it, a malformed job from its feeder.
inline constexpr int kVerifierChildExitUsage = 2;
/// Bounds on what a parent keeps of a verifier's stdout (the verdict's JSON) and stderr.
inline constexpr std::size_t kVerifierMaxStdoutBytes = 1u << 20;
inline constexpr std::size_t kVerifierMaxStderrBytes = 16u << 10;

/// argv (argv[0] = `self_exe`) that makes the child verify descriptor
/// kVerifierChildFd, calling it `path` in its messages.
std::vector<std::string> VerifierChildArgv(const std::string& self_exe, const std::string& path,
                                           const VerifyOptions& options, const ChildLimits& limits);

/// The child's environment: LIBC_FATAL_STDERR_=1, so glibc's fatal messages
/// ("free(): invalid pointer") reach stderr, and from there the verdict's
/// reason, instead of the tty; and nothing of this process's but sanitizer
/// options.
std::vector<std::string> VerifierChildEnvironment();

/// posix_spawn()s `argv` (argv[0] is `executable`) with VerifierChildEnvironment() and
/// `actions`. 0 with `*pid` set, or posix_spawn's error.
int SpawnWithVerifierEnvironment(const std::string& executable, std::vector<std::string> argv,
                                 const posix_spawn_file_actions_t* actions, pid_t* pid);

/// Parses the arguments VerifierChildArgv() makes (after the subcommand). False with `*err`.
bool ParseVerifierChildArgs(const std::vector<std::string>& args, VerifyOptions* options,
                            ChildLimits* limits, std::string* path, std::string* err);

/// Entry point of `ckptwatch __verify-child …` (argv after the subcommand):
/// applies the limits, confines itself (ConfineVerifier), verifies descriptor
/// kVerifierChildFd, writes one JSON line to stdout. Returns the exit status.
int VerifierChildMain(const std::vector<std::string>& args);

/// How a child ended, as the parent saw it.
struct ChildOutcome {
  int exit_code = 0;       ///< When it exited.
  int term_signal = 0;     ///< When a signal ended it.
  bool timed_out = false;  ///< The parent killed it at the deadline.
  std::string stdout_text;
  std::string stderr_text;
  double elapsed_ms = 0;
  std::uint64_t file_bytes = 0;  ///< The file's size as the parent saw it.
};

/// Keeps `n` bytes a verifier wrote to its stdout (`stream` 0) or stderr (1), while what is kept
/// is under kVerifierMaxStdoutBytes / kVerifierMaxStderrBytes; past that, output is dropped.
inline void KeepVerifierOutput(ChildOutcome* outcome, int stream, const char* data, std::size_t n) {
  std::string& sink = stream == 0 ? outcome->stdout_text : outcome->stderr_text;
  if (sink.size() < (stream == 0 ? kVerifierMaxStdoutBytes : kVerifierMaxStderrBytes))
    sink.append(data, n);
}

/// The verdict for `path` from a finished child: its JSON line when it wrote
/// one, otherwise `timeout` or `verifier_crashed` with the signal named.
VerifyResult ResultFromChild(const std::string& path, Level level, const ChildOutcome& outcome,
                             const ChildLimits& limits);

/// Runs the child on the file open at `fd` (named `path`) and waits for it
/// (blocking; for the one-shot CLI).
VerifyResult VerifyInChild(const std::string& self_exe, int fd, const std::string& path,
                           const VerifyOptions& options, const ChildLimits& limits);

/// This executable's path (/proc/self/exe), for spawning the child.
std::string SelfExecutable();

}  // namespace ckptwatch
