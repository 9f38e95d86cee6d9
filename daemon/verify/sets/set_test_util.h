// What the checkpoint-set tests share: where the shared corpus of sets is.
#pragma once

#include <cstdlib>
#include <string>

namespace ckptwatch::testing {

/// ../shared/corpus-sets as CTest passes it (CKPTWATCH_SETS_CORPUS, or the path CMake found);
/// "" when there is none, and the tests that need it skip (and fail under CI=true).
inline std::string SetsCorpus() {
  if (const char* dir = std::getenv("CKPTWATCH_SETS_CORPUS")) return dir;
#ifdef CKPTWATCH_TEST_SETS_CORPUS
  return CKPTWATCH_TEST_SETS_CORPUS;
#else
  return "";
#endif
}

}  // namespace ckptwatch::testing
