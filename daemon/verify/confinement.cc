#include "confinement.h"

#include <linux/capability.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
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

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

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
    if (!close_from_to(3, UINT_MAX)) return (*err = Errno("close_range"), false);
    return true;
  }
  if (!close_from_to(3, keep - 1) || !close_from_to(keep + 1, UINT_MAX))
    return (*err = Errno("close_range"), false);
  return true;
}

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(static_cast<scmp_filter_ctx>(ctx)); }
};

bool InstallSyscallFilter(std::string* err) {
  // Everything not listed fails with EPERM rather than killing the process:
  // libhdf5 then reports an error (a verdict), and an unexpected call from
  // the C library degrades a verdict instead of turning it into a crash.
  std::unique_ptr<void, FilterDeleter> holder(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  scmp_filter_ctx ctx = holder.get();
  if (ctx == nullptr) return (*err = "seccomp_init failed", false);
  int rc = 0;
  auto allow = [&](int syscall_number) {
    if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, syscall_number, 0);
  };
  // Reading the one descriptor; fstat (glibc's is newfstatat with
  // AT_EMPTY_PATH); libzip's fdopen reads the flags.
  for (int nr : {SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(readv), SCMP_SYS(preadv),
                 SCMP_SYS(preadv2), SCMP_SYS(lseek), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
                 SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(fadvise64), SCMP_SYS(close)})
    allow(nr);
  // Memory (no executable mappings: see below), time, signals, exit.
  for (int nr : {SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
                 SCMP_SYS(mincore), SCMP_SYS(futex), SCMP_SYS(clock_gettime),
                 SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(getpid),
                 SCMP_SYS(gettid), SCMP_SYS(getrandom), SCMP_SYS(sysinfo), SCMP_SYS(sched_yield),
                 SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
                 SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall), SCMP_SYS(exit),
                 SCMP_SYS(exit_group)})
    allow(nr);
  // cachestat(2): the page-cache guard's one-call count (page_cache.cc). By number: libseccomp
  // 2.5 predates it.
  allow(451);
  if (rc != 0) return (*err = std::string("seccomp_rule_add: ") + std::strerror(-rc), false);
  // The verdict goes to stdout, last words to stderr; nothing else is written.
  for (int nr : {SCMP_SYS(write), SCMP_SYS(writev)})
    for (scmp_datum_t fd : {scmp_datum_t{STDOUT_FILENO}, scmp_datum_t{STDERR_FILENO}})
      if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, fd));
  // Exploit code needs executable memory; the parse never does.
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                          SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                          SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
  // abort() signals itself; no other process may be signalled.
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                          SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(getpid())));
  // Reading limits (glibc's sysconf) but never raising them.
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A2(SCMP_CMP_EQ, 0));
  if (rc != 0) return (*err = std::string("seccomp_rule_add: ") + std::strerror(-rc), false);
  rc = seccomp_load(ctx);
  if (rc != 0) return (*err = std::string("seccomp_load: ") + std::strerror(-rc), false);
  return true;
}

}  // namespace

bool ConfineVerifier(int keep_fd, std::string* err) {
  if (!CloseAllBut(keep_fd, err)) return false;
  if (!DropCapabilities(err)) return false;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return (*err = Errno("no_new_privs"), false);
  // A sanitizer build's runtime writes its report to a log file when the
  // parse goes wrong: it keeps the file size limit and the syscalls it needs.
  if (kSanitizerBuild) return true;
  // Pipes are not files: the verdict still goes out.
  rlimit no_files{0, 0};
  if (setrlimit(RLIMIT_FSIZE, &no_files) != 0) return (*err = Errno("RLIMIT_FSIZE"), false);
  return InstallSyscallFilter(err);
}

bool SyscallFilterEnabled() { return !kSanitizerBuild; }

}  // namespace ckptwatch
