// Whether some process still holds a file open for writing, as a value: what open_writers.h
// answers and the decision core's Env port (decide/env.h) passes on.
#pragma once

namespace ckptwatch {

enum class OpenWriters {
  kNone,     ///< No process (other than this one) has the file open for writing.
  kSome,     ///< At least one has.
  kUnknown,  ///< Cannot be told (no lease, other users' processes hidden or past the walk's bound).
};

}  // namespace ckptwatch
