// The pre-forked verifier: one helper process, started with the daemon, that has libhdf5 and
// everything else loaded and initialised but never opens a file of a user's. It forks two kinds of
// child: a one-shot child per job, which receives the checkpoint and its stdout/stderr pipes
// (SCM_RIGHTS) and runs exactly what `ckptwatch __verify-child` runs (limits, ConfineVerifier(),
// one verification, one JSON line); and a warm verifier (warm_verifier.h), which receives a
// channel on which the daemon then sends it one owner's files. A fork instead of an exec saves
// the process start (ld.so, 25 shared objects). No state crosses owners: the zygote parses no
// byte of a user's file (only its own warm-up file, warm_up.h), and each child is a copy of
// that same zygote.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ckptwatch {

/// The hidden subcommand that runs VerifierZygoteMain().
inline constexpr std::string_view kVerifierZygoteCommand = "__verify-zygote";
/// The zygote's end of its SOCK_SEQPACKET socket to the daemon.
inline constexpr int kZygoteSocketFd = 3;

/// What the zygote reports about a job.
struct ZygoteReport {
  enum class Kind : std::uint32_t { kStarted = 1, kExited = 2, kForkFailed = 3 };
  std::uint64_t id = 0;
  Kind kind = Kind::kExited;
  pid_t pid = 0;
  int wait_status = 0;  ///< kExited: as waitpid() gives it; kForkFailed: the errno.
};

/// Entry point of `ckptwatch __verify-zygote` (descriptor kZygoteSocketFd is the socket):
/// drops capabilities, sets no_new_privs, initialises libhdf5, then serves jobs until the
/// daemon closes the socket. Returns the exit status.
int VerifierZygoteMain(const std::vector<std::string>& args);

/// A connected SOCK_SEQPACKET pair (close-on-exec): [0] for the daemon, [1] for the zygote.
bool ZygoteSocketPair(int fds[2], std::string* err);

/// Asks the zygote on `socket` to fork a child for job `id` that verifies `file_fd` with
/// `child_args` (VerifierChildArgv() after the subcommand), its stdout and stderr being
/// `out_fd` and `err_fd`. The descriptors are copied; the caller still owns them. False with
/// `*err` when the message could not be sent (the zygote is gone, or its socket is full).
bool SendZygoteJob(int socket, std::uint64_t id, const std::vector<std::string>& child_args,
                   int file_fd, int out_fd, int err_fd, std::string* err);

/// Asks the zygote to fork a warm verifier (warm_verifier.h) as job `id` with `warm_args`
/// (WarmVerifierArgs()), its channel being a copy of `channel_fd`. It is reported like a child:
/// started, then exited (when it retires, its channel closes, or it is killed).
bool SendZygoteStartWarm(int socket, std::uint64_t id, const std::vector<std::string>& warm_args,
                         int channel_fd, std::string* err);

/// Asks the zygote to SIGKILL the child of job `id` (a deadline passed). It still reports the
/// child's exit.
bool SendZygoteKill(int socket, std::uint64_t id);

/// Reads one report from the (non-blocking) `socket`. 1: `*report` filled; 0: nothing more to
/// read now; -1: the zygote is gone (end of file or an error).
int ReadZygoteReport(int socket, ZygoteReport* report);

}  // namespace ckptwatch
