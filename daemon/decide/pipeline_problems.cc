// A watch's problems (problem_set.h): raised and cleared, the checks that find them (a writer
// that cannot create files, low space), and the periodic summary line.
#include <cstdio>

#include "base/path_name.h"
#include "config/units.h"
#include "decide/pipeline.h"
#include "decide/pipeline_watch.h"

namespace ckptwatch {
namespace {

// How often a watch re-checks that its writer can create files there.
constexpr std::chrono::seconds kWritableCheckEvery{30};

std::string HumanDuration(double seconds) {
  char text[32];
  if (seconds < 120)
    std::snprintf(text, sizeof text, "%.0fs", seconds);
  else if (seconds < 7200)
    std::snprintf(text, sizeof text, "%.0fm", seconds / 60);
  else
    std::snprintf(text, sizeof text, "%.1fh", seconds / 3600);
  return text;
}

}  // namespace

void Pipeline::SetProblem(Watch& w, WatchProblem problem, bool active, const std::string& reason) {
  ProblemChanged changed{w.config.name, w.config.path, problem, active,
                         ProblemChanged::Change::kNone, reason};
  switch (w.problems.Set(std::string(WatchProblemName(problem)), active, reason)) {
    case ProblemSet::Change::kStarted:
      changed.change = ProblemChanged::Change::kStarted;
      break;
    case ProblemSet::Change::kCleared:
      changed.change = ProblemChanged::Change::kCleared;
      break;
    case ProblemSet::Change::kNone:
      break;
  }
  reporter_.Report(std::move(changed));
}

// The failure that leaves no file behind: the trainer cannot create one.
void Pipeline::CheckWritable(Watch& w) {
  w.next_writable_check = env_.Now() + kWritableCheckEvery;
  if (!w.config.writer || w.state != Watch::State::kActive) return;
  std::string why = env_.WhyCannotCreateIn(w.config.path, *w.config.writer);
  if (!why.empty()) why += ": its saves will fail with PermissionError [Errno 13]";
  SetProblem(w, WatchProblem::kNotWritable, !why.empty(), why);
}

void Pipeline::CheckSpace(Watch& w) {
  FsSpace space;
  if (w.state != Watch::State::kActive || !env_.StatSpace(w.config.path, &space)) return;
  reporter_.Report(FilesystemSpace{w.config.name, space.avail, space.size});
  std::string why = LowSpaceReason(space, w.config.min_free, w.last_good_bytes);
  SetProblem(w, WatchProblem::kLowSpace, !why.empty(), why);
}

void Pipeline::Summary(Watch& w) {
  std::vector<LogField> fields = {
      {"watch", w.config.name},
      {"state", w.state == Watch::State::kActive ? "active" : "missing"},
      {"ok", std::to_string(w.ok_total)},
      {"failed", std::to_string(w.failed_total)}};
  std::string msg;
  if (w.last_good_time) {
    double age = env_.UnixNow() - *w.last_good_time;
    fields.push_back({"last_good", w.last_good_path});
    fields.push_back({"last_good_age_s", std::to_string(static_cast<long long>(age))});
    fields.push_back({"last_good_bytes", std::to_string(w.last_good_bytes)});
    msg = "last good checkpoint " + LastComponent(w.last_good_path) + " (" +
          HumanBytes(w.last_good_bytes) + ") " + HumanDuration(age) + " ago";
  } else {
    msg = "no good checkpoint seen since start";
  }
  FsSpace space;
  if (env_.StatSpace(w.config.path, &space)) {
    fields.push_back({"avail_bytes", std::to_string(space.avail)});
    msg += "; " + HumanBytes(space.avail) + " free";
  }
  Log(LogLevel::kInfo, LogEvent::kSummary, std::move(fields), msg);
}

}  // namespace ckptwatch
