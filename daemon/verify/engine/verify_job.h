// One file to verify, as the decision core hands it to the verification queue: a value, so the
// Verifier port (decide/pipeline_ports.h) names it without the queue's libuv machinery.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "verify/verifier.h"

namespace ckptwatch {

/// One file to verify. The queue opens it only when its child starts, so a
/// long queue holds no descriptors.
struct VerifyJob {
  std::string watch;  ///< Watch name, for the caller.
  std::string path;   ///< For the caller and the child's messages.
  /// The watch root's directory; the file is opened as `relative` beneath it
  /// (OpenBeneath: no symlink followed). Null: `path` is opened as given.
  std::shared_ptr<UniqueFd> root;
  std::string relative;
  VerifyOptions options;
  /// Set by the queue: the file's owner (st_uid) when queued, its lane in the fair order.
  uid_t owner = 0;
  /// Set by the queue: the job was requeued once because its zygote died under it.
  bool retried = false;
  /// Set by the queue when a warm verifier (warm_verifier.h) gave the verdict: its pid as it
  /// reported it, and every owner (st_uid) whose file it was handed since it started — one,
  /// always; the queue kills a verifier that reports more (VerifierAlarm).
  pid_t verifier_pid = 0;
  std::vector<uid_t> verifier_uids;
};

}  // namespace ckptwatch
