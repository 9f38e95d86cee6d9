// Test-only launcher: runs a command on a machine where openat2(2) does not
// exist, as on kernels before 5.6 or under a container's seccomp profile that
// answers ENOSYS for system calls it does not know.
//
//   no_openat2 COMMAND [ARG...]
//
// Installs a seccomp filter that fails openat2 with ENOSYS and allows every
// other call, checks that it took, and execs COMMAND. Seccomp filters are
// inherited across fork and exec and can never be removed, so the daemon a
// test starts, its zygote and its verifier children all take the fallback
// walks in daemon/base/open_beneath.cc. Nothing in the daemon can turn this
// on: it is a property of the process tree, set up by the test's own process.
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: no_openat2 COMMAND [ARG...]\n");
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  int rc = ctx ? seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0) : -ENOMEM;
  if (rc == 0) rc = seccomp_load(ctx);  // sets no_new_privs first (libseccomp's default)
  seccomp_release(ctx);
  if (rc != 0) {
    std::fprintf(stderr, "no_openat2: cannot install the seccomp filter: %s\n", std::strerror(-rc));
    return 2;
  }
  // A filter that did not take would make every test below pass on the
  // openat2 path while claiming to test the fallback.
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  if (syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how) >= 0 || errno != ENOSYS) {
    std::fprintf(stderr, "no_openat2: openat2 still answers (%s) after the filter\n",
                 std::strerror(errno));
    return 2;
  }
  execvp(argv[1], argv + 1);
  std::fprintf(stderr, "no_openat2: cannot run %s: %s\n", argv[1], std::strerror(errno));
  return 127;
}
