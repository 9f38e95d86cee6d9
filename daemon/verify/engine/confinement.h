// Confining the verifier child. libhdf5 parses hostile bytes and has had
// memory-safety bugs; if one is exploited, the process it runs in must be
// unable to do anything but read the one file it was handed and write its
// verdict: no capability (the daemon's CAP_DAC_READ_SEARCH reads every file),
// no open, no socket, no exec.
#pragma once

#include <string>

#include "verify/engine/capabilities.h"

namespace ckptwatch {

/// Confines the calling process for verifying the file open at `keep_fd`:
/// closes every descriptor but 0, 1, 2 and `keep_fd`; makes it undumpable;
/// drops every capability;
/// sets no_new_privs; forbids creating files (RLIMIT_FSIZE 0); and installs a
/// seccomp filter under which reading descriptors, writing stdout/stderr,
/// memory management and exiting work, and everything else — open, socket,
/// exec, ptrace, kill of another process, ... — fails with EPERM.
/// Call after libraries are initialised and before any untrusted byte is
/// parsed. False with `*err` if any step failed: the caller must not go on.
bool ConfineVerifier(int keep_fd, std::string* err);

/// Confines a warm verifier (warm_verifier.cc) that serves one owner's files over the
/// SOCK_SEQPACKET socket at `channel_fd`: everything ConfineVerifier() does, keeping
/// descriptors 0, 1, 2 and `channel_fd`, with a filter that adds only what taking the next job
/// needs: recvmsg on `channel_fd` (the job and its descriptors), send on it (the report), and
/// restarting the per-file CPU budget (getrusage; prlimit64 on RLIMIT_CPU of itself, which
/// cannot raise the hard limit set at its start). The descriptor moves onto 1-3 use fcntl and
/// close, which the verifier already has.
bool ConfineWarmVerifier(int channel_fd, std::string* err);

/// Confines the zygote (verifier_zygote.cc), which already dropped its
/// capabilities and set no_new_privs: makes it undumpable and installs a
/// seccomp filter that allows what the zygote does — receive jobs with their
/// descriptors, fork, wait, SIGKILL its children, report — and what each
/// forked child needs to confine itself and verify (the child's own filter
/// then narrows that). Everything else — open, socket, exec, ptrace, a new
/// namespace, any signal but SIGKILL (and SIGABRT, which a child's abort()
/// sends itself) — fails with EPERM. False with `*err` if a step failed.
bool ConfineZygote(std::string* err);

/// PR_SET_DUMPABLE 0: no core, and /proc/<pid>/ (fd/, mem, environ, ...) and
/// ptrace closed to processes of the same uid without CAP_SYS_PTRACE.
bool MakeUndumpable(std::string* err);

/// True when ConfineVerifier() installs the syscall filter and the file size
/// limit in this build (sanitizer builds skip both: their runtime opens and
/// writes log files and forks a symbolizer at report time).
/// Applies to ConfineZygote() alike.
bool SyscallFilterEnabled();

}  // namespace ckptwatch
