// `ckptwatch verify`: the one-shot command for scripts and people.
#pragma once

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "verify/sets/checkpoint_set.h"

namespace ckptwatch {

/// Runs `ckptwatch verify ARGS…` (args after "verify"). Writes one line per
/// file to `out` and diagnostics to `err`. Returns 0 when every file is ok,
/// 1 when any is not (or nothing was found to verify), 2 on a usage error.
/// Header checks run here with our own parsers; everything that needs libhdf5 or libzip
/// runs in a confined child of `engine` (the ckptwatch-engine binary).
int RunVerifyCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                     const std::string& engine);

/// The line `verify` ends with on stderr when it verified more than one file:
/// "3 files: 2 ok, 1 truncated" (verdicts by count, then name), so a long run
/// over a directory says at a glance what it found without scrolling back.
std::string FormatVerifySummary(const std::map<std::string, std::size_t>& by_verdict);

/// The weight files `path` names: itself when it is not a directory, else the
/// *.h5, *.hdf5, *.keras, *.pt, *.pth, *.bin, *.ckpt and *.safetensors files in it
/// (below it too when `recursive`), sorted. Symlinked directories are not descended.
std::vector<std::string> CollectWeightFiles(const std::string& path, bool recursive,
                                            std::string* error);

/// Verifies a checkpoint set's member open at `fd` as `verify` verifies a file: at `header` here
/// with our own parsers, deeper in a confined child of `engine` (limited to `timeout_seconds`).
MemberCheck VerifyMember(const std::string& engine, int fd, const std::string& path, Level level,
                         double timeout_seconds);

/// True for names ckptwatch verifies: *.h5, *.hdf5, *.keras, *.pt, *.pth, *.bin, *.ckpt,
/// *.safetensors.
bool IsWeightFileName(const std::string& name);

}  // namespace ckptwatch
