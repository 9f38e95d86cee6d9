// `ckptwatch latest DIR`: which checkpoint to resume from — the newest complete one under DIR.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace ckptwatch {

/// Runs `ckptwatch latest ARGS…` (args after "latest"). Needs no daemon: recognises the
/// checkpoint sets in DIR and its subdirectories and the single-file checkpoints in DIR, and
/// judges them newest first (at `structure` unless --level says otherwise) until one is complete.
/// Prints its path (or a JSON object with --json) to `out`; newer ones that are not complete and
/// resume pointers that name a broken set are explained on `err`. Returns 0 when one is
/// complete, 1 when none is, 2 on a usage error or when DIR cannot be read.
int RunLatestCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                     const std::string& engine);

}  // namespace ckptwatch
