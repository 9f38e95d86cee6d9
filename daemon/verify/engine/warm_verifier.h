// A warm verifier: a confined verifier child that verifies one file after another, all of one
// owner (st_uid), received over its channel (warm_channel.h) — instead of a process per file.
// It is confined exactly like a one-shot child (confinement.h), once, before its first job; per
// file it restarts its CPU budget, verifies descriptor 3, writes the JSON line to the job's
// stdout, closes the job's descriptors and reports. It leaves (and is replaced) after
// `--max-files` files, after any verdict but ok or nonfinite from a file libhdf5 parsed (a
// parse error may have left libhdf5's state suspect; our own readers keep nothing), when a
// libhdf5 handle is still open after a verdict, when handed a file of a second owner, and
// when its channel closes (the feeder's idle timeout).
#pragma once

#include <string>
#include <vector>

namespace ckptwatch {

/// Entry point of `ckptwatch __verify-warm --timeout S --memory-bytes B --max-files N`, the
/// channel at kWarmChannelFd. Returns the exit status (0: its channel closed or it retired).
int WarmVerifierMain(const std::vector<std::string>& args);

}  // namespace ckptwatch
