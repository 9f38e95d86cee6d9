#include "core/state_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

namespace ckptwatch {
namespace {

namespace fs = std::filesystem;

class StateFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ckptwatch-state-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/state.json";
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Put(const std::string& text) { std::ofstream(path_) << text; }
  std::string dir_, path_;
};

SavedState SampleState() {
  SavedState state;
  SavedWatch& w = state.watches["run"];
  w.path = "/ckpt";
  w.files.push_back({"/ckpt/a.h5", {4096, 1'700'000'000'123'456'789LL, 42}, "truncated", "disk_full", 1.7e9});
  w.files.push_back({"/ckpt/sub/b.h5", {10, 5, 43}, "ok", "", 0});
  w.last_good = SavedFile{"/ckpt/sub/b.h5", {10, 0, 0}, "ok", "", 1.8e9};
  return state;
}

TEST_F(StateFileTest, WhatIsWrittenIsReadBack) {
  std::string err;
  ASSERT_TRUE(WriteStateFile(path_, SampleState(), &err)) << err;
  SavedState back;
  ASSERT_TRUE(LoadStateFile(path_, &back, &err)) << err;
  const SavedWatch& w = back.watches.at("run");
  EXPECT_EQ(w.path, "/ckpt");
  ASSERT_EQ(w.files.size(), 2u);
  EXPECT_EQ(w.files[0].stat, (FileStat{4096, 1'700'000'000'123'456'789LL, 42}));
  EXPECT_EQ(w.files[0].cause, "disk_full");
  EXPECT_EQ(w.files[0].since_unix, 1.7e9);
  ASSERT_TRUE(w.last_good);
  EXPECT_EQ(w.last_good->since_unix, 1.8e9);
  EXPECT_FALSE(fs::exists(path_ + ".tmp")) << "the temporary was left behind";
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(StateFileTest, AMissingFileIsAFirstStart) {
  SavedState state = SampleState();
  std::string err;
  EXPECT_TRUE(LoadStateFile(path_, &state, &err));
  EXPECT_TRUE(state.watches.empty());
}

// A state file with one watch "run" whose files are `files` (JSON array items).
std::string WithFiles(const std::string& files, const std::string& extra = "") {
  return R"({"version": 1, "watches": {"run": {"path": "/c", "files": [)" + files + "]" + extra +
         "}}}";
}

constexpr char kGoodEntry[] = R"(["/c/a.h5", 1, 2, 3, "truncated", "disk_full", 1.5])";

struct BadState {
  const char* what;
  std::string text;
  const char* reason;  ///< What `*err` says after the path.
};

// Every way a state file can be wrong, each on its own: the file is ignored
// (state_ignored) with the reason, never an exception out of LoadStateFile().
TEST_F(StateFileTest, EveryMalformedFieldIsRefusedWithItsReason) {
  const char* kNotOurs = " is not a ckptwatch state file (version 1)";
  const char* kWatch = ": watch run is malformed";
  const char* kEntry = ": a file entry of watch run is malformed";
  const std::vector<BadState> cases = {
      {"empty file", "", kNotOurs},
      {"not JSON", "state", kNotOurs},
      {"an array", "[]", kNotOurs},
      {"a string", R"("version")", kNotOurs},
      {"no version", R"({"watches": {}})", kNotOurs},
      {"version 2", R"({"version": 2, "watches": {}})", kNotOurs},
      {"version 0", R"({"version": 0, "watches": {}})", kNotOurs},
      {"version as a string", R"({"version": "1", "watches": {}})", kNotOurs},
      {"version null", R"({"version": null, "watches": {}})", kNotOurs},
      {"no watches", R"({"version": 1})", kNotOurs},
      {"watches an array", R"({"version": 1, "watches": []})", kNotOurs},
      {"watches a string", R"({"version": 1, "watches": "run"})", kNotOurs},
      {"watch a number", R"({"version": 1, "watches": {"run": 3}})", kWatch},
      {"watch an array", R"({"version": 1, "watches": {"run": []}})", kWatch},
      {"no path", R"({"version": 1, "watches": {"run": {"files": []}}})", kWatch},
      {"path a number", R"({"version": 1, "watches": {"run": {"path": 7, "files": []}}})", kWatch},
      {"path null", R"({"version": 1, "watches": {"run": {"path": null, "files": []}}})", kWatch},
      {"no files", R"({"version": 1, "watches": {"run": {"path": "/c"}}})", kWatch},
      {"files an object", R"({"version": 1, "watches": {"run": {"path": "/c", "files": {}}}})",
       kWatch},
      {"files a string", R"({"version": 1, "watches": {"run": {"path": "/c", "files": "a"}}})",
       kWatch},
      {"entry an object", WithFiles(R"({"path": "/c/a.h5"})"), kEntry},
      {"entry a string", WithFiles(R"("/c/a.h5")"), kEntry},
      {"six fields", WithFiles(R"(["/c/a.h5", 1, 2, 3, "ok", ""])"), kEntry},
      {"eight fields", WithFiles(R"(["/c/a.h5", 1, 2, 3, "ok", "", 0, 0])"), kEntry},
      {"path a number", WithFiles(R"([5, 1, 2, 3, "ok", "", 0])"), kEntry},
      {"path relative", WithFiles(R"(["a.h5", 1, 2, 3, "ok", "", 0])"), kEntry},
      {"path empty", WithFiles(R"(["", 1, 2, 3, "ok", "", 0])"), kEntry},
      {"size a string", WithFiles(R"(["/c/a.h5", "1", 2, 3, "ok", "", 0])"), kEntry},
      {"size negative", WithFiles(R"(["/c/a.h5", -1, 2, 3, "ok", "", 0])"), kEntry},
      {"size fractional", WithFiles(R"(["/c/a.h5", 1.5, 2, 3, "ok", "", 0])"), kEntry},
      {"size null", WithFiles(R"(["/c/a.h5", null, 2, 3, "ok", "", 0])"), kEntry},
      {"mtime a string", WithFiles(R"(["/c/a.h5", 1, "2", 3, "ok", "", 0])"), kEntry},
      {"mtime fractional", WithFiles(R"(["/c/a.h5", 1, 2.5, 3, "ok", "", 0])"), kEntry},
      {"mtime a boolean", WithFiles(R"(["/c/a.h5", 1, true, 3, "ok", "", 0])"), kEntry},
      {"inode a string", WithFiles(R"(["/c/a.h5", 1, 2, "3", "ok", "", 0])"), kEntry},
      {"inode negative", WithFiles(R"(["/c/a.h5", 1, 2, -3, "ok", "", 0])"), kEntry},
      {"inode an array", WithFiles(R"(["/c/a.h5", 1, 2, [3], "ok", "", 0])"), kEntry},
      {"verdict a number", WithFiles(R"(["/c/a.h5", 1, 2, 3, 0, "", 0])"), kEntry},
      {"verdict unknown", WithFiles(R"(["/c/a.h5", 1, 2, 3, "fine", "", 0])"), kEntry},
      {"cause a number", WithFiles(R"(["/c/a.h5", 1, 2, 3, "ok", 0, 0])"), kEntry},
      {"cause null", WithFiles(R"(["/c/a.h5", 1, 2, 3, "ok", null, 0])"), kEntry},
      {"cause unknown", WithFiles(R"(["/c/a.h5", 1, 2, 3, "truncated", "bad_luck", 0])"), kEntry},
      {"since a string", WithFiles(R"(["/c/a.h5", 1, 2, 3, "ok", "", "0"])"), kEntry},
      {"since null", WithFiles(R"(["/c/a.h5", 1, 2, 3, "ok", "", null])"), kEntry},
      // nlohmann refuses a number out of double's range: no infinity reaches FileFrom().
      {"since infinite", WithFiles(R"(["/c/a.h5", 1, 2, 3, "ok", "", 1e999])"), kNotOurs},
      {"a bad entry after a good one",
       WithFiles(std::string(kGoodEntry) + R"(, ["/c/b.h5", 1, 2, 3, 4, "", 0])"), kEntry},
  };
  for (const BadState& c : cases) {
    SCOPED_TRACE(c.what);
    Put(c.text);
    SavedState state = SampleState();
    std::string err;
    EXPECT_FALSE(LoadStateFile(path_, &state, &err));
    EXPECT_EQ(err, path_ + c.reason);
    EXPECT_TRUE(state.watches.empty()) << "a refused file leaves no state";
  }
}

TEST_F(StateFileTest, EveryFieldOfTheRightTypeIsRestored) {
  Put(WithFiles(
      std::string(kGoodEntry) + R"(, ["/c/b.h5", 18446744073709551615, -5, 0, "ok", "", 0])",
      R"(, "last_good": ["/c/b.h5", 7, 0, 0, "ok", "", 1800000000])"));
  SavedState state;
  std::string err;
  ASSERT_TRUE(LoadStateFile(path_, &state, &err)) << err;
  const SavedWatch& w = state.watches.at("run");
  ASSERT_EQ(w.files.size(), 2u);
  EXPECT_EQ(w.files[0].path, "/c/a.h5");
  EXPECT_EQ(w.files[0].stat, (FileStat{1, 2, 3}));
  EXPECT_EQ(w.files[0].verdict, "truncated");
  EXPECT_EQ(w.files[0].cause, "disk_full");
  EXPECT_EQ(w.files[0].since_unix, 1.5);
  EXPECT_EQ(w.files[1].stat, (FileStat{18446744073709551615ull, -5, 0}));
  ASSERT_TRUE(w.last_good);
  EXPECT_EQ(w.last_good->stat.size, 7u);
  EXPECT_EQ(w.last_good->since_unix, 1.8e9);
  // A cause is a verdict's name when it is not disk_full.
  Put(WithFiles(R"(["/c/a.h5", 1, 2, 3, "corrupt", "corrupt", 0])"));
  EXPECT_TRUE(LoadStateFile(path_, &state, &err)) << err;
}

// A state file written before 0.3.0 names `not_checkpoint` by its old name, `not_hdf5`: the
// failure is restored under today's name, as verdict and as cause (the failing-files gauge's
// label), not refused and not carried on under a name nothing else uses.
TEST_F(StateFileTest, AVerdictsOldNameIsRestoredUnderItsNewName) {
  Put(WithFiles(R"(["/c/vocab.h5", 1, 2, 3, "not_hdf5", "not_hdf5", 0])"));
  SavedState state;
  std::string err;
  ASSERT_TRUE(LoadStateFile(path_, &state, &err)) << err;
  const SavedWatch& w = state.watches.at("run");
  ASSERT_EQ(w.files.size(), 1u);
  EXPECT_EQ(w.files[0].verdict, "not_checkpoint");
  EXPECT_EQ(w.files[0].cause, "not_checkpoint");
}

// last_good only names the newest good file: a malformed one is dropped, the
// verdicts are kept.
TEST_F(StateFileTest, AMalformedLastGoodIsDroppedAlone) {
  for (const std::string last_good :
       {R"("/c/a.h5")", R"(["/c/a.h5", "7", 0, 0, "ok", "", 0])",
        R"(["/c/a.h5", 7, 0, 0, "ok", "", "1"])", R"(["a.h5", 7, 0, 0, "ok", "", 1])",
        R"({"path": "/c/a.h5"})"}) {
    SCOPED_TRACE(last_good);
    Put(WithFiles(kGoodEntry, R"(, "last_good": )" + last_good));
    SavedState state;
    std::string err;
    ASSERT_TRUE(LoadStateFile(path_, &state, &err)) << err;
    EXPECT_EQ(state.watches.at("run").files.size(), 1u);
    EXPECT_FALSE(state.watches.at("run").last_good);
  }
}

// A state file cut short anywhere (a full disk, a crash mid-copy by hand) is
// refused as a whole: no prefix is taken for a smaller state.
TEST_F(StateFileTest, EveryTruncationIsRefused) {
  std::string err;
  ASSERT_TRUE(WriteStateFile(path_, SampleState(), &err)) << err;
  std::ifstream in(path_);
  const std::string full((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(full.back(), '\n');
  for (std::size_t n = 0; n + 1 < full.size(); ++n) {
    SavedState state;
    EXPECT_FALSE(ParseStateText(full.substr(0, n), path_, &state, &err))
        << "the first " << n << " bytes";
    EXPECT_TRUE(state.watches.empty());
    EXPECT_EQ(err, path_ + " is not a ckptwatch state file (version 1)")
        << "the first " << n << " bytes";
  }
  SavedState state;
  EXPECT_TRUE(ParseStateText(full, path_, &state, &err)) << err;
  EXPECT_EQ(state.watches.at("run").files.size(), 2u);
}

TEST_F(StateFileTest, AtMost20000FilesPerWatchAreRestored) {
  std::string files;
  for (int i = 0; i < 20001; ++i) {
    if (i) files += ",";
    files += R"(["/c/)" + std::to_string(i) + R"(.h5", 1, 2, 3, "ok", "", 0])";
  }
  SavedState state;
  std::string err;
  ASSERT_TRUE(ParseStateText(WithFiles(files), path_, &state, &err)) << err;
  ASSERT_EQ(state.watches.at("run").files.size(), 20000u);
  EXPECT_EQ(state.watches.at("run").files.back().path, "/c/19999.h5");
}

TEST_F(StateFileTest, ASymlinkInPlaceOfTheStateFileIsNotFollowed) {
  fs::create_symlink("/etc/passwd", path_);
  SavedState state;
  std::string err;
  EXPECT_FALSE(LoadStateFile(path_, &state, &err));
}

TEST_F(StateFileTest, TheStateDirectoryComesFromSystemdWhenNotConfigured) {
  Config config;
  setenv("STATE_DIRECTORY", "/var/lib/ckptwatch:/var/lib/other", 1);
  EXPECT_EQ(StateFilePath(config), "/var/lib/ckptwatch/state.json");
  config.state.file = "/srv/state.json";
  EXPECT_EQ(StateFilePath(config), "/srv/state.json");
  config.state.file.clear();
  unsetenv("STATE_DIRECTORY");
  EXPECT_EQ(StateFilePath(config), "");
}

}  // namespace
}  // namespace ckptwatch
