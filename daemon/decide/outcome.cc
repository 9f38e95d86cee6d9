#include "outcome.h"

#include <cstdio>

namespace ckptwatch {

Outcome DecideOutcome(const VerifyResult& result, const OutcomeInput& input) {
  Outcome out;
  out.message = result.reason;
  if (input.stuck)
    out.message += "; unchanged since the last look: the writer most likely died or hung mid-save "
                   "(killed, out of memory, preempted)";
  if (!result.ok()) {
    SaveCause c = ClassifyFailure(result, input.space.value_or(FsSpace{}), input.min_free);
    out.cause = c.name;
    if (!c.explanation.empty()) out.message += "; " + c.explanation;
  } else if (!input.unreadable.empty()) {
    // Saved fine, but the people who load it must be able to read it.
    out.cause = "permission_denied";
    out.message += "; but " + input.unreadable;
  }
  out.level = out.cause.empty() ? LogLevel::kInfo : LogLevel::kError;

  out.fields = {{"watch", input.watch},
                {"path", result.path},
                {"verdict", std::string(VerdictName(result.verdict))},
                {"verify_level", std::string(LevelName(result.level))},
                {"bytes", std::to_string(result.bytes)}};
  if (result.expected_bytes) out.fields.push_back({"expected_bytes", std::to_string(*result.expected_bytes)});
  char elapsed[32];
  std::snprintf(elapsed, sizeof elapsed, "%.1f", result.elapsed_ms);
  out.fields.push_back({"elapsed_ms", elapsed});
  if (!result.keras.custom_classes.empty()) {
    std::string classes;
    for (const std::string& c : result.keras.custom_classes) classes += (classes.empty() ? "" : ",") + c;
    out.fields.push_back({"custom_classes", classes});
  }
  if (!out.cause.empty()) {
    out.fields.push_back({"cause", out.cause});
    if (input.space) out.fields.push_back({"avail_bytes", std::to_string(input.space->avail)});
  }
  return out;
}

}  // namespace ckptwatch
