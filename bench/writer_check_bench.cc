// What "is anyone still writing this file?" costs the daemon's loop, and how
// that depends on what other users hold open (issue 21, item 2).
//
// For 0 and for N descriptors held by another uid (processes of `nobody`,
// each as many dups of /dev/null as its RLIMIT_NOFILE allows) it times, on one
// file with no writer:
//   lease         ProbeWritersByLease(): the daemon's answer where it may take
//                 a lease (its own files, or CAP_LEASE as the unit grants)
//   walk          OpenWriterIndex::WalkProc(): the fallback, bounded to
//                 kMaxDescriptorsPerUid descriptors of each uid
//   walk, all     the same walk with no bound, as every check cost before
//                 (the baseline, measured in the same run)
// and prints a table of medians. Run as root: bench/writer_check_bench [N]
// (default 1,000,000). Built with the tests: build/bench_writer_check.
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "watch/open_writers.h"

namespace {

using Clock = std::chrono::steady_clock;

double MedianMs(int runs, const std::function<void()>& f) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Processes of uid 65534 holding `count` descriptors between them; killed on destruction.
struct Hog {
  std::vector<pid_t> pids;
  explicit Hog(long count) {
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    const long per = static_cast<long>(limit.rlim_max) - 64;
    while (count > 0) {
      const long n = std::min(count, per);
      count -= n;
      int ready[2];
      if (pipe(ready) != 0) std::abort();
      const pid_t pid = fork();
      if (pid == 0) {
        close(ready[0]);
        rlimit all{limit.rlim_max, limit.rlim_max};
        setrlimit(RLIMIT_NOFILE, &all);
        if (setgid(65534) != 0 || setuid(65534) != 0) _exit(1);
        const int fd = open("/dev/null", O_RDONLY);
        for (long i = 1; i < n; ++i)
          if (dup(fd) < 0) _exit(2);
        char c = 'r';
        if (write(ready[1], &c, 1) != 1) _exit(3);
        pause();
        _exit(0);
      }
      close(ready[1]);
      char c = 0;
      if (read(ready[0], &c, 1) != 1) {
        std::fprintf(stderr, "a descriptor holder did not start\n");
        std::exit(2);
      }
      close(ready[0]);
      pids.push_back(pid);
    }
  }
  ~Hog() {
    for (pid_t pid : pids) kill(pid, SIGKILL);
    for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  }
};

// The walk as it was before the bound: every descriptor of every process.
std::size_t WalkEverything() {
  std::size_t seen = 0;
  const std::string proc = "/proc";
  std::vector<std::string> pids;
  if (auto* dir = opendir("/proc")) {
    while (auto* e = readdir(dir))
      if (e->d_name[0] >= '1' && e->d_name[0] <= '9') pids.push_back(e->d_name);
    closedir(dir);
  }
  for (const std::string& pid : pids) {
    const std::string fd_dir = proc + "/" + pid + "/fd";
    auto* dir = opendir(fd_dir.c_str());
    if (!dir) continue;
    while (auto* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      struct stat st;
      if (fstatat(dirfd(dir), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode)) {
        const std::string info = proc + "/" + pid + "/fdinfo/" + e->d_name;
        const int fd = open(info.c_str(), O_RDONLY);
        if (fd >= 0) close(fd);
      }
      ++seen;
    }
    closedir(dir);
  }
  return seen;
}

}  // namespace

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "writer_check_bench: run as root (the holder processes run as nobody)\n");
    return 2;
  }
  const long held = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  char path[] = "/tmp/writer_check_bench.XXXXXX";
  const int file = mkstemp(path);
  if (file < 0) return 2;
  close(file);
  const int fd = open(path, O_RDONLY | O_NONBLOCK);

  std::printf("| descriptors held by another uid | lease (ms) | bounded walk (ms) | unbounded walk, the baseline (ms) | unbounded / lease |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: |\n");
  for (long count : {0L, held}) {
    Hog hog(count);
    const double lease = MedianMs(201, [&] { ckptwatch::ProbeWritersByLease(fd); });
    const double walk = MedianMs(5, [] { ckptwatch::OpenWriterIndex::WalkProc(std::nullopt, std::nullopt); });
    const double all = MedianMs(count > 0 ? 3 : 5, [] { WalkEverything(); });
    std::printf("| %ld | %.4f | %.2f | %.1f | %.0f× |\n", count, lease, walk, all, all / lease);
  }
  close(fd);
  unlink(path);
  return 0;
}
