// `ckptwatch status`: what the running daemon knows, in one command — each
// watch's state, last good checkpoint, failing files and problems.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "decide/status_snapshot.h"

namespace ckptwatch {

/// Exit status: 0 all well, 1 something failing (a file, a problem, a watch
/// not watching), 2 the daemon cannot be reached or the arguments are wrong.
int RunStatusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

/// The human form, at most 80 columns: failing files first, then one line
/// per watch. `now` is the time ages are measured from.
std::string FormatStatus(const StatusSnapshot& status, double now);

}  // namespace ckptwatch
