#include "state_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

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

SavedState Sample() {
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
  ASSERT_TRUE(WriteStateFile(path_, Sample(), &err)) << err;
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
  SavedState state = Sample();
  std::string err;
  EXPECT_TRUE(LoadStateFile(path_, &state, &err));
  EXPECT_TRUE(state.watches.empty());
}

TEST_F(StateFileTest, ACorruptFileIsRefusedWithAReasonAndLeavesNoState) {
  for (const std::string text :
       {"{", "[]", "{\"version\": 2, \"watches\": {}}", "{\"version\": 1, \"watches\": {\"run\": 3}}",
        "{\"version\": 1, \"watches\": {\"run\": {\"path\": \"/c\", \"files\": [[\"rel.h5\", 1, 2, 3, \"ok\", \"\", 0]]}}}",
        "{\"version\": 1, \"watches\": {\"run\": {\"path\": \"/c\", \"files\": [[\"/c/a.h5\", -1, 2, 3, \"ok\", \"\", 0]]}}}"}) {
    SCOPED_TRACE(text);
    Put(text);
    SavedState state = Sample();
    std::string err;
    EXPECT_FALSE(LoadStateFile(path_, &state, &err));
    EXPECT_NE(err.find(path_), std::string::npos) << err;
    EXPECT_TRUE(state.watches.empty());
  }
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
