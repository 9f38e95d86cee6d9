// The floor under a verifier's CPU per file: the same checkpoint verified over and over in one
// process, with no daemon, no channel, no confinement and no process start. What a confined
// warm verifier spends per file beyond this is its process boundary; what the daemon spends, its
// own path (docs/performance.md, "Targets not met, and why").
//
// usage: build/bench_verify_loop FILE [ROUNDS] [--level header|structure|full] [--gap-us N]
// Prints the CPU (user + system) and wall time per verification, after 50 rounds of warm-up,
// and what libhdf5's open and walk alone (InspectHdf5) cost of it. --gap-us sleeps between
// rounds, as the files of a save come spaced out (256 shards in 1 s: one every 4 ms): the same
// walk then costs more CPU, its caches gone cold while the process slept.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/unique_fd.h"
#include "verify/hdf5/hdf5_handle.h"
#include "verify/hdf5/hdf5_inspector.h"
#include "verify/verify_open_file.h"
#include "verify/verify_result.h"

namespace {

using ckptwatch::Level;

struct Cost {
  double cpu_us = 0;
  double system_us = 0;
  double wall_us = 0;
};

double Microseconds(const timeval& t) { return t.tv_sec * 1e6 + t.tv_usec; }

// Runs `once` `rounds` times after a warm-up, `gap_us` apart; the cost of one run (its wall
// time without the gaps).
Cost Measure(int rounds, int gap_us, const std::function<void()>& once) {
  for (int i = 0; i < 50; ++i) once();
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  std::chrono::steady_clock::duration busy{};
  for (int i = 0; i < rounds; ++i) {
    if (gap_us > 0) usleep(static_cast<useconds_t>(gap_us));
    const auto start = std::chrono::steady_clock::now();
    once();
    busy += std::chrono::steady_clock::now() - start;
  }
  getrusage(RUSAGE_SELF, &after);
  Cost cost;
  cost.system_us = (Microseconds(after.ru_stime) - Microseconds(before.ru_stime)) / rounds;
  cost.cpu_us =
      (Microseconds(after.ru_utime) - Microseconds(before.ru_utime)) / rounds + cost.system_us;
  cost.wall_us = std::chrono::duration<double, std::micro>(busy).count() / rounds;
  return cost;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [ROUNDS] [--level header|structure|full] [--gap-us N]\n",
                 argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  int rounds = 2000;
  int gap_us = 0;
  ckptwatch::VerifyOptions options;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--level") == 0 && i + 1 < argc) {
      const auto level = ckptwatch::ParseLevel(argv[++i]);
      if (!level) return std::fprintf(stderr, "unknown level %s\n", argv[i]), 2;
      options.level = *level;
    } else if (std::strcmp(argv[i], "--gap-us") == 0 && i + 1 < argc) {
      gap_us = std::stoi(argv[++i]);
    } else {
      rounds = std::stoi(argv[i]);
    }
  }
  ckptwatch::InitHdf5ErrorHandling();
  ckptwatch::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || fstat(fd.get(), &st) != 0)
    return std::fprintf(stderr, "cannot open %s: %s\n", path.c_str(), std::strerror(errno)), 2;
  const ckptwatch::VerifyResult first = ckptwatch::VerifyOpenFile(fd.get(), path, options);
  std::printf("%s: %s, level %s, %d rounds %d µs apart\n", path.c_str(),
              std::string(ckptwatch::VerdictName(first.verdict)).c_str(),
              std::string(ckptwatch::LevelName(options.level)).c_str(), rounds, gap_us);
  std::size_t sink = 0;
  const Cost whole = Measure(rounds, gap_us, [&] {
    sink += ckptwatch::ToJson(ckptwatch::VerifyOpenFile(fd.get(), path, options)).dump().size();
  });
  std::printf("| VerifyOpenFile + its JSON line | %.1f µs CPU (%.1f system) | %.1f µs wall |\n",
              whole.cpu_us, whole.system_us, whole.wall_us);
  ckptwatch::Hdf5Source source;
  source.fd = fd.get();
  source.name = path;
  source.file_size = static_cast<std::uint64_t>(st.st_size);
  const Cost walk =
      Measure(rounds, gap_us, [&] { sink += ckptwatch::InspectHdf5(source, options.level).datasets; });
  std::printf(
      "| of which libhdf5's open and walk (InspectHdf5) | %.1f µs CPU (%.1f system) | %.1f µs wall "
      "|\n",
      walk.cpu_us, walk.system_us, walk.wall_us);
  return sink == 0 ? 1 : 0;
}
