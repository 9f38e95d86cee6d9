// libFuzzer target: the state file (daemon/core/state_file.h) on arbitrary bytes.
//
// The daemon reads it at every start, before it watches anything: whatever the bytes,
// ParseStateText() must refuse them with a message and no state (the daemon logs
// state_ignored) or restore a state — never throw, crash or abort `run`. A restored state holds
// only what the pipeline stores (absolute paths, known verdicts, at most 20,000 files a watch),
// and it survives the round trip every save makes: StateFileText() parses back to it.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/state_file.h"
#include "verify/verdict.h"

namespace {

const std::string kPath = "/var/lib/ckptwatch/state.json";

[[noreturn]] void Fail(const char* what, std::string_view input, const std::string& detail) {
  std::fprintf(stderr, "state_fuzz: %s\n--- input ---\n%.*s\n--- detail ---\n%s\n", what,
               static_cast<int>(input.size()), input.data(), detail.c_str());
  std::abort();
}

bool Stored(const ckptwatch::SavedFile& f) {
  return !f.path.empty() && f.path[0] == '/' && ckptwatch::ParseVerdict(f.verdict) &&
         (f.cause.empty() || f.cause == "disk_full" || ckptwatch::ParseVerdict(f.cause));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ckptwatch::SavedState state;
  std::string err;
  if (!ckptwatch::ParseStateText(text, kPath, &state, &err)) {
    if (err.rfind(kPath, 0) != 0) Fail("refused without naming the file", text, err);
    if (!state.watches.empty()) Fail("refused but left a state", text, err);
    return 0;
  }
  for (const auto& [name, w] : state.watches) {
    if (w.files.size() > 20000) Fail("more than 20,000 files restored for a watch", text, name);
    for (const ckptwatch::SavedFile& f : w.files)
      if (!Stored(f))
        Fail("restored an entry the pipeline never stores", text, f.path + " " + f.verdict);
    if (w.last_good && !Stored(*w.last_good))
      Fail("restored a last_good the pipeline never stores", text, name);
  }
  const std::string written = ckptwatch::StateFileText(state);
  ckptwatch::SavedState back;
  if (!ckptwatch::ParseStateText(written, kPath, &back, &err))
    Fail("what is written does not load", text, written + err);
  if (!(back == state)) Fail("what is written loads to a different state", text, written);
  return 0;
}
