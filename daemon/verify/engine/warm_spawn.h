// The `ckptwatch verify` side of warm verifiers (warm_verifier.h): spawns `ckptwatch-engine
// __verify-warm` per owner (st_uid) of the files as needed, hands each file to an idle one of
// its owner, and waits for the verdict — blocking, callable from several threads at once
// (`verify -j N`). No libhdf5 here: the light `ckptwatch` front links this file.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "verify/engine/verifier_child.h"
#include "verify/engine/warm_channel.h"

namespace ckptwatch {

class WarmProcess;

class WarmSpawnPool {
 public:
  /// Verifiers run `engine` with `limits`; each serves at most `max_files` files; at most
  /// `max_idle` are kept idle (the least recently used goes first).
  WarmSpawnPool(std::string engine, ChildLimits limits, std::size_t max_files, std::size_t max_idle);
  ~WarmSpawnPool();  ///< Closes every verifier's channel and reaps it.
  WarmSpawnPool(const WarmSpawnPool&) = delete;
  WarmSpawnPool& operator=(const WarmSpawnPool&) = delete;

  /// Verifies the file open at `fd` (named `path`, owned by `owner`) in a warm verifier of that
  /// owner; nullopt when no verifier could take it (spawn or send failed: the caller runs a
  /// one-shot child). A verifier that crashed, timed out, retired or reported another owner is
  /// not reused.
  std::optional<VerifyResult> Verify(int fd, uid_t owner, const std::string& path,
                                     const VerifyOptions& options);

  /// Reaps every idle verifier now (before the threads that spawned them end: a verifier dies
  /// with the thread that spawned it, PR_SET_PDEATHSIG).
  void CloseAll();

  /// Verifiers spawned so far.
  std::size_t spawned() const;

 private:
  std::unique_ptr<WarmProcess> Take(uid_t owner);
  void Give(std::unique_ptr<WarmProcess> process);

  const std::string engine_;
  const ChildLimits limits_;
  const std::size_t max_files_;
  const std::size_t max_idle_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<WarmProcess>> idle_;  // least recently used first
  std::size_t spawned_ = 0;
  std::uint64_t next_job_ = 1;
};

}  // namespace ckptwatch
