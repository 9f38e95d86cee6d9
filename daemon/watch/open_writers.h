// Which files some process holds open for writing, read from /proc: how the
// daemon tells "the writer closed its file and is gone" from "a writer still
// has it open" when a close event arrives for an incomplete file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <utility>

namespace ckptwatch {

enum class OpenWriters {
  kNone,     ///< No process (other than this one) has the file open for writing.
  kSome,     ///< At least one has.
  kUnknown,  ///< Other users' processes cannot be inspected (not root, ProtectProc=invisible).
};

/// A snapshot of every descriptor on the machine open for writing (O_WRONLY or
/// O_RDWR) on a regular file, by (device, inode), with one holder named each.
/// Taking one walks /proc/*/fd; Query() reuses a snapshot younger than
/// `max_age` and taken after `not_before`, so a burst of incomplete files
/// costs one walk, not one each, and no answer predates what it is about.
class OpenWriterIndex {
 public:
  using Clock = std::chrono::steady_clock;

  explicit OpenWriterIndex(Clock::duration max_age = std::chrono::milliseconds(500))
      : max_age_(max_age) {}

  /// Whether (`dev`, `ino`) is open for writing; `*who` gets "pid 123 (python3)".
  OpenWriters Query(dev_t dev, ino_t ino, Clock::time_point not_before, std::string* who);

 private:
  void Refresh(Clock::time_point now);

  Clock::duration max_age_;
  Clock::time_point taken_{};
  bool valid_ = false;
  bool visible_ = false;  // could see other users' descriptors when taken
  std::map<std::pair<dev_t, ino_t>, std::string> writers_;
};

}  // namespace ckptwatch
