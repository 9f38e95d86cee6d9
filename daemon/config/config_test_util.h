// Test helpers for the config_*_test.cc files: YAML in, a Config or an error text out.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"

namespace ckptwatch::testing {

/// A mkdtemp() directory for config files, removed with its contents.
class TempConfigDir {
 public:
  TempConfigDir() {
    char tmpl[] = "/tmp/ckptwatch-config-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempConfigDir() { std::filesystem::remove_all(path_); }
  TempConfigDir(const TempConfigDir&) = delete;
  TempConfigDir& operator=(const TempConfigDir&) = delete;

  /// Writes `text` to `name` inside the directory and returns its path.
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string path = path_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// `yaml` loaded as /etc/ckptwatch/ckptwatch.yaml; a test failure when it does not load.
inline Config Load(const std::string& yaml) {
  Config config;
  std::string err;
  EXPECT_TRUE(LoadConfigString(yaml, "/etc/ckptwatch/ckptwatch.yaml", &config, &err))
      << err << "\nin:\n"
      << yaml;
  return config;
}

/// The error text for `yaml`, loaded as "ckptwatch.yaml" (so messages read ckptwatch.yaml:L:C).
inline std::string Error(const std::string& yaml) {
  Config config;
  std::string err;
  EXPECT_FALSE(LoadConfigString(yaml, "ckptwatch.yaml", &config, &err)) << yaml;
  return err;
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline constexpr char kOneWatch[] = "watches:\n  - path: /data/ckpt/run42\n";

/// Files in the source tree: CKPTWATCH_SOURCE_DIR, else the tree the test binary was built
/// from (CMake defines CKPTWATCH_TEST_SOURCE_DIR), else "" (tests then skip).
inline std::string SourceDir() {
  const char* dir = std::getenv("CKPTWATCH_SOURCE_DIR");
#ifdef CKPTWATCH_TEST_SOURCE_DIR
  if (dir == nullptr) dir = CKPTWATCH_TEST_SOURCE_DIR;
#endif
  return dir == nullptr ? "" : dir;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace ckptwatch::testing
