#include "verify/hdf5/hdf5_direct_read.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "verify/hdf5/hdf5_inspector.h"
#include "verify/hdf5/superblock.h"
#include "verify/verifier.h"

namespace ckptwatch {
namespace {

// ---- Which bytes of a chunk are read --------------------------------------

// For every chunk of random shapes: the runs cover each element of the chunk that lies inside
// the dataset exactly once, and nothing else (an edge chunk's outside holds the fill value or
// stale bytes, which libhdf5 never returns).
TEST(ChunkRuns, CoverEachElementOfTheChunkInsideTheDatasetOnce) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t rank = 1 + rng() % 4;
    std::vector<hsize_t> dims(rank), chunk(rank);
    for (std::size_t d = 0; d < rank; ++d) {
      dims[d] = 1 + rng() % 13;
      chunk[d] = 1 + rng() % 6;
    }
    std::vector<hsize_t> coords(rank, 0);
    while (true) {
      std::vector<RawRun> runs;
      const std::optional<std::uint64_t> covered =
          AppendChunkRuns(dims, chunk, coords, 1000, 1, 0, 1 << 20, &runs);
      ASSERT_TRUE(covered);
      std::multiset<std::uint64_t> read;
      for (const RawRun& run : runs)
        for (std::uint64_t b = 0; b < run.bytes; ++b) read.insert(run.offset - 1000 + b);
      std::multiset<std::uint64_t> inside;
      std::uint64_t chunk_elements = 1;
      for (hsize_t c : chunk) chunk_elements *= c;
      for (std::uint64_t linear = 0; linear < chunk_elements; ++linear) {
        std::uint64_t rest = linear;
        bool in = true;
        for (std::size_t d = rank; d-- > 0;) {
          in = in && coords[d] + rest % chunk[d] < dims[d];
          rest /= chunk[d];
        }
        if (in) inside.insert(linear);
      }
      EXPECT_EQ(read, inside) << "trial " << trial;
      EXPECT_EQ(*covered, inside.size());
      std::size_t d = rank;  // the next chunk on the grid
      while (d-- > 0 && (coords[d] += chunk[d]) >= dims[d]) coords[d] = 0;
      if (d == static_cast<std::size_t>(-1)) break;
    }
  }
}

TEST(ChunkRuns, TooManyRunsLeaveTheChunkToLibhdf5) {
  // An edge column of a 1000 x 2 chunk: 1000 one-element runs.
  std::vector<RawRun> runs;
  EXPECT_FALSE(AppendChunkRuns({1000, 1}, {1000, 2}, {0, 0}, 0, 4, 0, 999, &runs));
  EXPECT_TRUE(AppendChunkRuns({1000, 1}, {1000, 2}, {0, 0}, 0, 4, 0, 1000, &runs));
  EXPECT_EQ(runs.size(), 1000u);
}

// ---- Files h5py writes: direct reads against libhdf5's ---------------------

class DirectReadFile : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") != 0)
      GTEST_SKIP() << "/usr/bin/python3 has no h5py";
    char dir[] = "/tmp/ckptwatch-direct-read-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Runs `script` with h5py and numpy (as np) imported and the new file's path in `p`.
  std::string Write(const std::string& script) {
    const std::string path = dir_ + "/f" + std::to_string(++files_) + ".h5";
    const std::string program = dir_ + "/write.py";
    std::ofstream(program) << "import os, sys, h5py, numpy as np\np = sys.argv[1]\n" << script;
    EXPECT_EQ(std::system(("/usr/bin/python3 " + program + " " + path).c_str()), 0) << script;
    return path;
  }

  struct BothWays {
    Hdf5Inspection direct, libhdf5;
  };
  // `full` of the file with direct reads and through libhdf5 alone: the same verdict, reason
  // and counts, whatever they are.
  static BothWays Inspect(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    EXPECT_EQ(fstat(fd, &st), 0);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    const HeaderCheck header = CheckHeaderOfFd(fd, size);
    EXPECT_EQ(header.verdict, Verdict::kOk) << header.reason;
    Hdf5Source source{.fd = fd,
                      .name = path,
                      .image = {},
                      .file_size = size,
                      .base_address = header.superblock ? header.superblock->base_address : 0,
                      .end_of_allocation = header.expected_bytes};
    BothWays out{InspectHdf5(source, Level::kFull), {}};
    source.direct_reads = false;
    out.libhdf5 = InspectHdf5(source, Level::kFull);
    close(fd);
    EXPECT_EQ(out.direct.verdict, out.libhdf5.verdict);
    EXPECT_EQ(out.direct.reason, out.libhdf5.reason);
    EXPECT_EQ(out.direct.nonfinite, out.libhdf5.nonfinite);
    EXPECT_EQ(out.direct.datasets, out.libhdf5.datasets);
    EXPECT_EQ(out.direct.parameters, out.libhdf5.parameters);
    EXPECT_EQ(out.libhdf5.direct_datasets, 0u);
    return out;
  }

 private:
  std::string dir_;
  int files_ = 0;
};

TEST_F(DirectReadFile, ContiguousFloatsOfEverySizeCountAsThroughLibhdf5) {
  const BothWays r = Inspect(Write(R"(
with h5py.File(p, 'w') as f:
    a = np.ones(300001, np.float32); a[[0, 123457, -1]] = [np.nan, np.inf, -np.inf]; f['f32'] = a
    b = np.ones((700, 301), np.float64); b[5, 7] = np.nan; f['g/f64'] = b
    c = np.ones(5001, np.float16); c[5000] = np.inf; f['f16'] = c
    f['scalar'] = np.float32(np.nan)
    f['clean'] = np.zeros((64, 64), np.float32)
    f['ints'] = np.arange(10)
)"));
  EXPECT_EQ(r.direct.nonfinite, 6u);
  EXPECT_EQ(r.direct.verdict, Verdict::kNonfinite);
  EXPECT_NE(r.direct.reason.find("'/f16'"), std::string::npos) << r.direct.reason;  // first visited
  EXPECT_EQ(r.direct.direct_datasets, 5u);  // every float; the integers go through libhdf5
}

TEST_F(DirectReadFile, BigEndianFloatsCountAsThroughLibhdf5) {
  const BothWays r = Inspect(Write(R"(
with h5py.File(p, 'w') as f:
    for t in ('>f2', '>f4', '>f8'):
        a = np.ones(10007, t); a[[3, 10006]] = [np.nan, -np.inf]; f['c' + t[1:]] = a
        d = f.create_dataset('k' + t[1:], shape=(101, 13), chunks=(16, 8), dtype=t)
        d[...] = 1; d[100, 12] = np.nan
)"));
  EXPECT_EQ(r.direct.nonfinite, 9u);
  EXPECT_EQ(r.direct.direct_datasets, 6u);
}

TEST_F(DirectReadFile, EdgeChunksAreReadOnlyInsideTheDataset) {
  // A NaN fill value: h5py stores every edge chunk with NaN in the part outside the dataset.
  const BothWays r = Inspect(Write(R"(
with h5py.File(p, 'w') as f:
    d = f.create_dataset('m', shape=(1000, 333), chunks=(64, 50), dtype='f4', fillvalue=np.nan)
    d[...] = 1; d[999, 332] = np.nan; d[0, 0] = np.inf; d[500, 49] = np.nan
    e = f.create_dataset('cube', shape=(17, 9, 5), chunks=(4, 4, 4), dtype='<f8', fillvalue=np.nan)
    e[...] = 2; e[16, 8, 4] = np.nan
    v = f.create_dataset('v', shape=(10001,), chunks=(1000,), dtype='f2', fillvalue=np.inf)
    v[...] = 0
    _, raw = d.id.read_direct_chunk((960, 300))
    assert np.isnan(np.frombuffer(raw, '<f4')).sum() == 64 * 50 - 40 * 33 + 1
)"));
  EXPECT_EQ(r.direct.nonfinite, 4u);
  EXPECT_EQ(r.direct.direct_datasets, 3u);
}

TEST_F(DirectReadFile, UnallocatedChunksReadAsTheirFillValue) {
  const BothWays r = Inspect(Write(R"(
with h5py.File(p, 'w') as f:
    d = f.create_dataset('nan_fill', shape=(100, 100), chunks=(30, 30), dtype='f4', fillvalue=np.nan)
    d[0:30, 0:30] = 1; d[90:100, 90:100] = 1
    z = f.create_dataset('zero_fill', shape=(100, 100), chunks=(30, 30), dtype='>f8')
    z[0:30, 0:30] = 1
    f.create_dataset('never_written', shape=(50,), chunks=(10,), dtype='f4', fillvalue=np.inf)
)"));
  // nan_fill: 10,000 elements, 900 + 100 of them written; never_written: 50 × Inf.
  EXPECT_EQ(r.direct.nonfinite, 9000u + 50u);
  EXPECT_EQ(r.direct.direct_datasets, 3u);
}

TEST_F(DirectReadFile, FillTimeNeverIsLeftToLibhdf5) {
  const BothWays r = Inspect(Write(R"(
dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
dcpl.set_chunk((4,))
dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
with h5py.File(p, 'w') as f:
    d = h5py.Dataset(h5py.h5d.create(f.id, b'never', h5py.h5t.IEEE_F32LE,
                                     h5py.h5s.create_simple((20,)), dcpl=dcpl))
    d[0:4] = 1
)"));
  EXPECT_EQ(r.direct.direct_datasets, 0u);
}

TEST_F(DirectReadFile, FilteredDataStillGoesThroughLibhdf5) {
  const BothWays r = Inspect(Write(R"(
with h5py.File(p, 'w') as f:
    a = np.ones((300, 300), np.float32); a[299, 299] = np.nan
    f.create_dataset('gz', data=a, chunks=(64, 64), compression='gzip', shuffle=True, fletcher32=True)
    f.create_dataset('plain', data=a, chunks=(64, 64))
)"));
  EXPECT_EQ(r.direct.nonfinite, 2u);
  EXPECT_EQ(r.direct.direct_datasets, 1u);
}

TEST_F(DirectReadFile, AUserBlockMovesContiguousAndChunkAddressesAlike) {
  const BothWays r = Inspect(Write(R"(
with h5py.File(p, 'w', userblock_size=1024) as f:
    a = np.ones(50000, np.float32); a[49999] = np.nan; f['c'] = a
    f.create_dataset('k', data=a, chunks=(4096,))
)"));
  EXPECT_EQ(r.direct.nonfinite, 2u);
  EXPECT_EQ(r.direct.direct_datasets, 2u);
}

TEST_F(DirectReadFile, StoragePatchedPastTheEndIsTruncatedAsThroughLibhdf5) {
  // The layout message's address (contiguous) and a B-tree entry's (chunked) moved to 100 bytes
  // before the end of the file: the data would run past it.
  for (const char* layout : {"", ", chunks=(1000,)"}) {
    SCOPED_TRACE(*layout ? "chunked" : "contiguous");
    const std::string create =
        std::string("w = f.create_dataset('w', data=np.ones(5000, 'f4')") + layout + ")";
    const BothWays r = Inspect(Write(R"(
with h5py.File(p, 'w') as f:
    f['a'] = np.ones(1000, np.float32)
    )" + create + R"(
    address = w.id.get_offset() if w.chunks is None else w.id.get_chunk_info(0).byte_offset
data = bytearray(open(p, 'rb').read())
needle = address.to_bytes(8, 'little')
assert data.count(needle) == 1, data.count(needle)
i = data.index(needle)
data[i:i + 8] = (len(data) - 100).to_bytes(8, 'little')
open(p, 'wb').write(data)
)"));
    EXPECT_EQ(r.direct.verdict, Verdict::kTruncated) << r.direct.reason;
    EXPECT_NE(r.direct.reason.find("dataset '/w' has data up to byte"), std::string::npos)
        << r.direct.reason;
  }
}

// ---- The shared corpora: every verdict as through libhdf5 -------------------

// VerifyOpenFile() at `full` in a child process, as JSON without the time it took: libhdf5 may
// crash or hang on the corpus's malformed files.
std::string VerifyInChildProcess(const std::string& path, bool direct) {
  int out[2];
  if (pipe(out) != 0) return "pipe failed";
  const pid_t pid = fork();
  if (pid == 0) {
    close(out[0]);
    alarm(120);
    // Under ASan the shadow memory alone is terabytes of address space: no RLIMIT_AS there
    // (verifier_child.cc does the same).
#ifndef __SANITIZE_ADDRESS__
    const rlimit memory{std::uint64_t{2} << 30, std::uint64_t{2} << 30};
    setrlimit(RLIMIT_AS, &memory);
#endif
    VerifyOptions options;
    options.level = Level::kFull;
    options.direct_reads = direct;
    nlohmann::json json = ToJson(VerifyFile(path, options));
    json.erase("elapsed_ms");
    const std::string text = json.dump();
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = write(out[1], text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    _exit(0);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<std::size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) text += " (killed by signal " + std::to_string(WTERMSIG(status)) + ")";
  return text;
}

TEST(DirectReadCorpus, EveryVerdictIsTheOneLibhdf5AloneGives) {
  std::vector<std::string> corpora;
  for (const char* variable : {"CKPTWATCH_CORPUS", "CKPTWATCH_FORMATS_CORPUS"}) {
    const char* dir = std::getenv(variable);
#if defined(CKPTWATCH_TEST_CORPUS) && defined(CKPTWATCH_TEST_FORMATS_CORPUS)
    if (dir == nullptr)
      dir = std::string(variable) == "CKPTWATCH_CORPUS" ? CKPTWATCH_TEST_CORPUS
                                                        : CKPTWATCH_TEST_FORMATS_CORPUS;
#endif
    if (dir != nullptr && std::filesystem::is_directory(dir)) corpora.emplace_back(dir);
  }
  if (corpora.empty()) GTEST_SKIP() << "no corpus (CKPTWATCH_CORPUS, CKPTWATCH_FORMATS_CORPUS)";
  int files = 0;
  for (const std::string& corpus : corpora) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(corpus)) {
      if (!entry.is_regular_file() || entry.path().parent_path() == corpus) continue;
      const std::string path = entry.path().string();
      SCOPED_TRACE(path);
      EXPECT_EQ(VerifyInChildProcess(path, true), VerifyInChildProcess(path, false));
      ++files;
    }
  }
  EXPECT_GT(files, 40);
}

}  // namespace
}  // namespace ckptwatch
