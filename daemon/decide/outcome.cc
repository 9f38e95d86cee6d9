#include "decide/outcome.h"

#include <cstdio>

namespace ckptwatch {

namespace {

// The verifier's reason may end in a guess at the cause for someone with no
// context — "(disk full or writer killed during save?)". Where the daemon
// knows the cause, its sentence replaces the guess.
std::string WithoutGuess(const std::string& reason) {
  if (reason.size() < 3 || reason.compare(reason.size() - 2, 2, "?)") != 0) return reason;
  const std::size_t open = reason.rfind(" (");
  return open == std::string::npos ? reason : reason.substr(0, open);
}

// What the pipeline saw of the writer, when the bytes alone do not say.
SaveCause WriterCause(const VerifyResult& result, const OutcomeInput& input) {
  SaveCause cause{std::string(VerdictName(result.verdict)), ""};
  if (input.writer_died)
    return {"writer_died",
            "its writer closed the file before the save was complete and no process has it open: the "
            "writer died mid-save (killed, out of memory, preempted, crashed); resume from the last "
            "good checkpoint"};
  if (input.stuck && input.held_open)
    return {"stuck", "still open for writing by " +
                         (input.holder.empty() ? std::string("a process ckptwatch cannot name")
                                               : input.holder) +
                         " and unchanged for " + FormatDuration(input.stuck_after) +
                         ": the writer is hung, or keeps the file open between saves"};
  if (input.stuck)
    return {"writer_died", "still incomplete and unchanged after " + FormatDuration(input.stuck_after) +
                               ": the writer died or hung mid-save"};
  if (result.verdict == Verdict::kTruncated && input.closed)
    cause.explanation = "its writer stopped before the end of the file (killed or crashed mid-save)";
  return cause;
}

std::string JoinedNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

// What the person who loads it must do: the classes to hand to load_model, or the environment.
std::string LoadAdvice(LoadOutcome load, const std::string& classes, const std::string& target) {
  if (load == LoadOutcome::kNeedsCustomObjects)
    return classes.empty()
               ? "make the classes the reason names importable where the file is loaded"
               : "load with custom_objects for " + classes + " (or register the classes)";
  return "load it where it was saved (its Keras and Python), or save it again for " +
         (target.empty() ? std::string("the loading environment") : target);
}

}  // namespace

LoadTarget WatchLoadTarget(const WatchConfig& watch) {
  LoadTarget target;
  std::pair<int, int> version;
  std::string ignored;
  if (ParseVersion(watch.load_target_keras, &version, &ignored)) target.keras = version;
  if (ParseVersion(watch.load_target_python, &version, &ignored)) target.python = version;
  return target;
}

VerifyResult AsReported(const VerifyResult& result, const OutcomeInput& input) {
  if (result.verdict != Verdict::kInProgress || !input.writer_died) return result;
  // "in_progress" at 3 a.m. says "wait"; with its writer gone there is nothing to wait for.
  VerifyResult ended = result;
  ended.verdict = Verdict::kTruncated;
  ended.reason = "the save never finished: " + result.reason;
  return ended;
}

Outcome DecideOutcome(const VerifyResult& result, const OutcomeInput& input) {
  Outcome out;
  out.message = result.reason;
  const std::optional<LoadJudgement> load = JudgeLoad(result, input.load_target);
  if (load) out.load = load->outcome;
  if (!result.ok()) {
    // Space first: a writer that died of ENOSPC died of the full disk.
    SaveCause c = ClassifyFailure(result, input.space.value_or(FsSpace{}), input.min_free);
    if (c.name != "disk_full") c = WriterCause(result, input);
    out.cause = c.name;
    if (!c.explanation.empty()) out.message = WithoutGuess(result.reason) + "; " + c.explanation;
  } else if (!input.unreadable.empty()) {
    // Saved fine, but the people who load it must be able to read it.
    out.cause = "permission_denied";
    out.message += "; but " + input.unreadable;
  } else if (load && load->outcome == LoadOutcome::kIncompatible && input.fail_on_incompatible) {
    out.cause = "load_incompatible";
  }
  if (load && (!load->target.empty() || !load->reason.empty()))
    out.message += "; load" + (load->target.empty() ? "" : " with " + load->target) + ": " +
                   std::string(LoadOutcomeName(load->outcome)) + (load->reason.empty() ? "" : ": " + load->reason);
  out.level = out.cause.empty() ? LogLevel::kInfo : LogLevel::kError;
  // Saved fine, but its next load_model fails (or needs code): someone must act, so not info —
  // `grep level=warn` finds it — yet not the error of a failed save.
  if (out.cause.empty() && result.ok() && load && load->outcome != LoadOutcome::kLoads) {
    const std::string classes = JoinedNames(result.keras.custom_classes);
    out.load_problem = LoadProblemFile{
        "",           "",           std::string(LoadOutcomeName(load->outcome)),      classes,
        load->target, load->reason, LoadAdvice(load->outcome, classes, load->target), 0};
    out.level = LogLevel::kWarn;
  }

  out.fields = {{"watch", input.watch},
                {"path", result.path},
                {"verdict", std::string(VerdictName(result.verdict))},
                {"verify_level", std::string(LevelName(result.level))},
                {"bytes", std::to_string(result.bytes)}};
  if (result.expected_bytes) out.fields.push_back({"expected_bytes", std::to_string(*result.expected_bytes)});
  char elapsed[32];
  std::snprintf(elapsed, sizeof elapsed, "%.1f", result.elapsed_ms);
  out.fields.push_back({"elapsed_ms", elapsed});
  if (!result.keras.custom_classes.empty())
    out.fields.push_back({"custom_classes", JoinedNames(result.keras.custom_classes)});
  if (load) out.fields.push_back({"load", std::string(LoadOutcomeName(load->outcome))});
  if (!out.cause.empty()) {
    out.fields.push_back({"cause", out.cause});
    if (input.space) out.fields.push_back({"avail_bytes", std::to_string(input.space->avail)});
  }
  return out;
}

}  // namespace ckptwatch
