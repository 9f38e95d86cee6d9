// Test helpers every floor's tests use: a temporary directory removed with its contents, and
// real writes into it.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace ckptwatch::testing {

/// A mkdtemp() directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ckptwatch_watch_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Creates or truncates `path` with `content`, closing it (IN_CLOSE_WRITE).
inline void WriteFile(const std::string& path, const std::string& content = "x") {
  std::ofstream(path, std::ios::binary) << content;
}

}  // namespace ckptwatch::testing
