#include "verify/engine/confinement.h"

#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <iterator>
#include <memory>

namespace ckptwatch {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
constexpr bool kSanitizerBuild = true;
#else
constexpr bool kSanitizerBuild = false;
#endif
#else
constexpr bool kSanitizerBuild = false;
#endif

std::string SyscallError(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// Closes every descriptor from 3 up but `keep_fd`.
bool CloseAllBut(int keep_fd, std::string* err) {
  // close_range(2) (Linux 5.9); without it, every possible descriptor.
  auto close_from_to = [](unsigned first, unsigned last) -> bool {
    if (first > last) return true;
    if (syscall(SYS_close_range, first, last, 0) == 0) return true;
    if (errno != ENOSYS) return false;
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    const unsigned end = limit.rlim_cur == RLIM_INFINITY ? 65536u
                                                        : static_cast<unsigned>(limit.rlim_cur);
    for (unsigned fd = first; fd <= last && fd < end; ++fd) close(static_cast<int>(fd));
    return true;
  };
  const unsigned keep = static_cast<unsigned>(keep_fd);
  if (keep_fd < 3) {
    if (!close_from_to(3, UINT_MAX)) return (*err = SyscallError("close_range"), false);
    return true;
  }
  if (!close_from_to(3, keep - 1) || !close_from_to(keep + 1, UINT_MAX))
    return (*err = SyscallError("close_range"), false);
  return true;
}

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(static_cast<scmp_filter_ctx>(ctx)); }
};

using Filter = std::unique_ptr<void, FilterDeleter>;

// Calls the child makes under either filter: reading its descriptor; fstat (glibc's is
// newfstatat with AT_EMPTY_PATH); libzip's fdopen reads the flags; memory (mmap and mprotect
// are added apart: never executable), time, signal handling, exit.
constexpr int kChildCalls[] = {
    SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(readv), SCMP_SYS(preadv), SCMP_SYS(preadv2),
    SCMP_SYS(lseek), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(fcntl), SCMP_SYS(dup),
    SCMP_SYS(fadvise64), SCMP_SYS(close), SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap),
    SCMP_SYS(madvise), SCMP_SYS(mincore), SCMP_SYS(futex), SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(getpid), SCMP_SYS(gettid),
    SCMP_SYS(getrandom), SCMP_SYS(sysinfo), SCMP_SYS(sched_yield), SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
    SCMP_SYS(restart_syscall), SCMP_SYS(exit), SCMP_SYS(exit_group),
    // cachestat(2): the page-cache guard's one-call count (page_cache.cc). By number:
    // libseccomp 2.5 predates it.
    451};

// What the zygote adds for itself: its loop (poll, the signalfd, recvmsg with SCM_RIGHTS,
// reports on its socket), fork and wait, and what a forked child does before its own filter
// is in place (RunChild, VerifierChildMain: dup2 onto 1-3, die with the zygote, limits,
// ConfineVerifier's close_range, capset, prctl and seccomp).
constexpr int kZygoteCalls[] = {SCMP_SYS(poll),    SCMP_SYS(ppoll),    SCMP_SYS(recvmsg),
                                SCMP_SYS(sendto),  SCMP_SYS(sendmsg),  SCMP_SYS(wait4),
                                SCMP_SYS(waitid),  SCMP_SYS(getppid),  SCMP_SYS(set_robust_list),
                                SCMP_SYS(dup2),    SCMP_SYS(dup3),     SCMP_SYS(close_range),
                                SCMP_SYS(prctl),   SCMP_SYS(capget),   SCMP_SYS(capset),
                                SCMP_SYS(seccomp), SCMP_SYS(prlimit64), SCMP_SYS(getrusage)};

// The new-namespace flags of clone(2): a zygote without capabilities could still make a user
// namespace, and from there a playground of privileges inside it.
constexpr scmp_datum_t kCloneNewNamespaces = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                             CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                             CLONE_NEWNET;

// A filter under which everything not allowed fails with EPERM rather than killing the
// process: libhdf5 then reports an error (a verdict), and an unexpected call from the C
// library degrades a verdict instead of turning it into a crash.
bool NewFilter(Filter* filter, std::string* err) {
  filter->reset(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (*filter == nullptr) return (*err = "seccomp_init failed", false);
  return true;
}

// Adds `calls` allowed unconditionally, writes to stdout/stderr only, and memory that is never
// executable (exploit code needs it; the parse never does).
int AddCommonRules(scmp_filter_ctx ctx, const int* calls, std::size_t count) {
  int rc = 0;
  for (std::size_t i = 0; i < count && rc == 0; ++i)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);
  for (int nr : {SCMP_SYS(write), SCMP_SYS(writev)})
    for (scmp_datum_t fd : {scmp_datum_t{STDOUT_FILENO}, scmp_datum_t{STDERR_FILENO}})
      if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, fd));
  for (int nr : {SCMP_SYS(mmap), SCMP_SYS(mprotect)})
    if (rc == 0)
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  return rc;
}

bool Load(scmp_filter_ctx ctx, int rc, std::string* err) {
  if (rc != 0) return (*err = std::string("seccomp_rule_add: ") + std::strerror(-rc), false);
  rc = seccomp_load(ctx);
  if (rc != 0) return (*err = std::string("seccomp_load: ") + std::strerror(-rc), false);
  return true;
}

// `warm_channel` >= 0: a warm verifier's filter, which also receives jobs on that socket.
bool InstallSyscallFilter(int warm_channel, std::string* err) {
  Filter holder;
  if (!NewFilter(&holder, err)) return false;
  scmp_filter_ctx ctx = holder.get();
  int rc = AddCommonRules(ctx, kChildCalls, std::size(kChildCalls));
  if (warm_channel >= 0) {
    const auto channel = static_cast<scmp_datum_t>(warm_channel);
    for (int nr : {SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(sendmsg)})
      if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, channel));
    if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getrusage), 0);
    // Its own CPU limit, per file (setrlimit is prlimit64(0, RLIMIT_CPU, new, NULL)); the hard
    // limit set before the filter bounds it, and raising that needs CAP_SYS_RESOURCE.
    if (rc == 0)
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2, SCMP_A0(SCMP_CMP_EQ, 0),
                            SCMP_A1(SCMP_CMP_EQ, RLIMIT_CPU));
  }
  // abort() signals itself; no other process may be signalled.
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                          SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(getpid())));
  // Reading limits (glibc's sysconf) but never raising them.
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A2(SCMP_CMP_EQ, 0));
  return Load(ctx, rc, err);
}

bool InstallZygoteFilter(std::string* err) {
  Filter holder;
  if (!NewFilter(&holder, err)) return false;
  scmp_filter_ctx ctx = holder.get();
  int rc = AddCommonRules(ctx, kChildCalls, std::size(kChildCalls));
  for (int nr : kZygoteCalls)
    if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  // fork() is clone() without a new namespace; clone3 (threads) is not needed and its flags
  // sit in memory a filter cannot read.
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, kCloneNewNamespaces, 0));
  // Seccomp cannot tell the zygote's children from other processes of its uid: it may send
  // SIGKILL (what it sends its children) and SIGABRT (a child's abort() to itself, which the
  // child's own filter then limits to itself), nothing else.
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, SCMP_A1(SCMP_CMP_EQ, SIGKILL));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A2(SCMP_CMP_EQ, SIGABRT));
  return Load(ctx, rc, err);
}

}  // namespace

bool MakeUndumpable(std::string* err) {
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0) return true;
  return (*err = SyscallError("PR_SET_DUMPABLE"), false);
}

bool ConfineZygote(std::string* err) {
  if (!MakeUndumpable(err)) return false;
  if (kSanitizerBuild) return true;
  return InstallZygoteFilter(err);
}

namespace {
bool Confine(int keep_fd, int warm_channel, std::string* err) {
  if (!CloseAllBut(keep_fd, err)) return false;
  // A forked child inherits the zygote's setting and a spawned one had it set at start
  // (verifier_child.cc); exec resets it, so it is asked again here, for whoever calls.
  if (!MakeUndumpable(err)) return false;
  if (!DropCapabilities(err)) return false;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return (*err = SyscallError("no_new_privs"), false);
  // A sanitizer build's runtime writes its report to a log file when the
  // parse goes wrong: it keeps the file size limit and the syscalls it needs.
  if (kSanitizerBuild) return true;
  // Pipes are not files: the verdict still goes out.
  rlimit no_files{0, 0};
  if (setrlimit(RLIMIT_FSIZE, &no_files) != 0) return (*err = SyscallError("RLIMIT_FSIZE"), false);
  return InstallSyscallFilter(warm_channel, err);
}
}  // namespace

bool ConfineVerifier(int keep_fd, std::string* err) { return Confine(keep_fd, -1, err); }

bool ConfineWarmVerifier(int channel_fd, std::string* err) {
  return Confine(channel_fd, channel_fd, err);
}

bool SyscallFilterEnabled() { return !kSanitizerBuild; }

}  // namespace ckptwatch
