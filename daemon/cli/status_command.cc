#include "cli/status_command.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "base/text_escape.h"
#include "cli/run_command.h"
#include "config/config.h"
#include "config/units.h"
#include "decide/save_cause.h"
#include "report/status_json.h"
#include "report/status_server.h"

namespace ckptwatch {
namespace {

constexpr char kStatusUsage[] =
    "usage: ckptwatch status [--json] [--config FILE] [--socket PATH]\n"
    "\n"
    "Asks the running daemon for every watch's state, last good checkpoint, failing\n"
    "files and problems. The socket comes from the config's status.socket (without\n"
    "--config: /etc/ckptwatch/ckptwatch.yaml if it exists, else the default).\n"
    "Exit status: 0 all well, 1 something failing, 2 the daemon cannot be reached.\n";

// The daemon's answer is small; anything past this is not ckptwatch.
constexpr std::size_t kMaxAnswer = 16 << 20;
constexpr int kTimeoutMs = 5000;
// Runs listed per watch in the text form, most recent first.
constexpr std::size_t kRunsShown = 10;

bool Ask(const std::string& path, std::string* answer, std::string* err) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    *err = "cannot reach the daemon at " + path + ": " + std::strerror(e) +
           (e == EACCES ? " (members of the adm group, and root, may ask)"
                        : e == ENOENT || e == ECONNREFUSED ? " (is ckptwatch running? systemctl status ckptwatch)"
                                                           : "");
    close(fd);
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
  char buffer[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) == 0) {
      *err = "the daemon at " + path + " did not answer within 5 s";
      close(fd);
      return false;
    }
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer->append(buffer, static_cast<std::size_t>(n));
    if (answer->size() > kMaxAnswer) {
      *err = "the answer at " + path + " is too large to be ckptwatch's";
      close(fd);
      return false;
    }
  }
  close(fd);
  return true;
}

std::string Age(double seconds) {
  if (seconds < 0) seconds = 0;
  return FormatDuration(std::chrono::milliseconds(static_cast<long long>(seconds) * 1000));
}

std::string Clock(double unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%m-%d %H:%M", &utc);
  return text;
}

// Everything in the daemon's answer is shown escaped as the log escapes it: a file name is
// chosen by whoever can write a watched directory, and a raw ESC, OSC, bidi override or line
// break in it would rewrite the terminal or forge a line of this output.
std::string Shown(const std::string& text) { return EscapeForDisplay(text, false); }

// A path that does not fit keeps its end: the file name matters most. Cut after escaping, on a
// character boundary, so the cut never makes a raw byte or a broken sequence.
std::string Fit(const std::string& text, std::size_t width) {
  const std::string shown = Shown(text);
  if (shown.size() <= width) return shown;
  return "…" + std::string(Utf8Suffix(shown, width - 1));
}

// A sentence that does not fit loses its middle: its start says who or what (a user, a file,
// a path) and its end what follows (the error, the remedy); a cut from either side loses one.
std::string FitMiddle(const std::string& text, std::size_t width) {
  const std::string shown = Shown(text);
  if (shown.size() <= width) return shown;
  const std::string_view head = Utf8Prefix(shown, (width - 1) / 2);
  return std::string(head) + "…" + std::string(Utf8Suffix(shown, width - 1 - head.size()));
}

// Ok files that may not load where they are loaded: not failed saves, but work for someone.
std::string FormatLoadProblems(const StatusSnapshot& status) {
  std::string out;
  for (const WatchStatus& w : status.watches) {
    for (const LoadProblemFile& l : w.load_problems) {
      if (out.empty()) out = "\nLOAD PROBLEMS (saved ok, may not load; newest first)\n";
      const std::string where = l.run.empty() ? w.name : w.name + "/" + l.run;
      std::string what = Fit(where, 30) + ": " + Fit(l.load, 24);
      if (!l.classes.empty()) what += ", class " + Fit(l.classes, 40);
      what += ", target " + (l.target.empty() ? std::string("none") : Fit(l.target, 30));
      out += "  " + Fit(l.path, 76) + "\n";
      out += "    " + FitMiddle(what, 74) + "\n";
      if (!l.reason.empty()) out += "    why: " + FitMiddle(l.reason, 69) + "\n";
      out += "    do: " + FitMiddle(l.advice, 70) + "\n";
    }
    if (w.load_problems_total > w.load_problems.size())
      out += "    … and " + std::to_string(w.load_problems_total - w.load_problems.size()) +
             " more in " + Fit(w.name, 40) + " (--json)\n";
  }
  return out;
}

// Failures that are over: what ended each, so a green status after a bad
// night still says what happened.
std::string FormatResolved(const StatusSnapshot& status) {
  std::string out;
  for (const WatchStatus& w : status.watches) {
    for (const ResolvedFailure& r : w.resolved) {
      if (out.empty()) out = "\nRESOLVED (newest first; times UTC)\n";
      const std::string where = r.run.empty() ? w.name : w.name + "/" + r.run;
      const std::string by = r.resolved_by == r.path
                                 ? "written again good"
                                 : "newer good save " + r.resolved_by.substr(r.resolved_by.rfind('/') + 1);
      out += "  " + Fit(r.path, 76) + "\n";
      out += "    " + Fit(where, 30) + ": was " + Fit(r.verdict, 24) + " (cause " + Fit(r.cause, 24) +
             "), resolved " + Clock(r.resolved_unix) + " by " + Fit(by, 60) + "\n";
    }
  }
  return out;
}

}  // namespace

std::string FormatStatus(const StatusSnapshot& status, double now) {
  std::string out;
  std::size_t failing = 0;
  for (const WatchStatus& w : status.watches) failing += w.failing_total;
  char line[256];
  std::snprintf(line, sizeof line, "%zu watch%s, %zu failing file%s; %zu verifying, %zu queued\n",
                status.watches.size(), status.watches.size() == 1 ? "" : "es", failing,
                failing == 1 ? "" : "s", status.verifying, status.queued);
  out += line;
  if (failing > 0) {
    out += "\nFAILING (newest first; times UTC)\n";
    for (const WatchStatus& w : status.watches) {
      for (const FailingFile& f : w.failing) {
        out += "  " + Fit(f.path, 76) + "\n";
        const std::string where = f.run.empty() ? w.name : w.name + "/" + f.run;
        std::snprintf(line, sizeof line, "    %s: %s, cause %s, since %s%s\n",
                      Fit(where, 30).c_str(), Fit(f.verdict, 24).c_str(), Fit(f.cause, 24).c_str(),
                      f.since_unix > 0 ? Clock(f.since_unix).c_str() : "?",
                      f.count > 1 ? (", ×" + std::to_string(f.count)).c_str() : "");
        out += line;
        out += "    why: " +
               (f.reason.empty() ? std::string("(failed before the daemon restarted; see its log)")
                                 : FitMiddle(f.reason, 69)) +
               "\n";
      }
      if (w.failing_total > w.failing.size())
        out += "    … and " + std::to_string(w.failing_total - w.failing.size()) + " more in " +
               Fit(w.name, 40) + "\n";
    }
  }
  out += FormatLoadProblems(status);
  out += FormatResolved(status);
  out += "\nWATCHES\n";
  for (const WatchStatus& w : status.watches) {
    std::snprintf(line, sizeof line, "  %-20s %-9s %-8s %s", Fit(w.name, 20).c_str(),
                  Fit(w.state, 9).c_str(), Fit(w.backend, 8).c_str(),
                  w.pending ? (std::to_string(w.pending) + " pending").c_str() : "");
    std::string row = line;
    row.erase(row.find_last_not_of(' ') + 1);
    out += row + "\n";
    out += "    " + Fit(w.path, 76) + "\n";
    if (w.last_good) {
      const std::string name = w.last_good->path.substr(w.last_good->path.rfind('/') + 1);
      out += "    last good: " + Fit(name, 40) + ", " + HumanBytes(w.last_good->bytes) + ", " +
             Age(now - w.last_good->unix) + " ago\n";
    } else {
      out += "    last good: none since the daemon started\n";
    }
    for (std::size_t i = 0; i < w.runs.size() && i < kRunsShown; ++i) {
      const WatchStatus::Run& r = w.runs[i];
      const std::string name = r.last_good.path.substr(r.last_good.path.rfind('/') + 1);
      out += "    run " + Fit(r.name, 20) + ": last good " + Fit(name, 24) + ", " + HumanBytes(r.last_good.bytes) +
             ", " + Age(now - r.last_good.unix) + " ago\n";
    }
    if (w.runs.size() > kRunsShown)
      out += "    … and " + std::to_string(w.runs.size() - kRunsShown) + " more runs (--json lists all)\n";
    // The newest complete checkpoint set of each run: what to resume from.
    for (std::size_t i = 0; i < w.complete_sets.size() && i < kRunsShown; ++i) {
      const WatchStatus::CompleteSet& c = w.complete_sets[i];
      const std::string shown =
          c.path.compare(0, w.path.size() + 1, w.path + "/") == 0 ? c.path.substr(w.path.size() + 1) : c.path;
      out += "    " + (c.run.empty() ? std::string() : "run " + Fit(c.run, 20) + ": ") + "resume from " +
             Fit(shown, 40) + " (" + Fit(c.layout, 16) + (c.step >= 0 ? ", step " + std::to_string(c.step) : "") +
             "), complete " + Age(now - c.unix) + " ago\n";
    }
    for (const WatchStatus::Problem& p : w.problems) {
      const std::string name = Fit(p.name, 40);
      out += "    problem " + name + ": " +
             FitMiddle(p.reason, name.size() < 40 ? 66 - name.size() : 26) + "\n";
    }
  }
  return out;
}

int RunStatusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  bool json = false;
  std::string config_path, socket_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if ((args[i] == "--config" || args[i] == "--socket") && i + 1 < args.size()) {
      std::string& target = args[i] == "--config" ? config_path : socket_path;
      target = args[++i];
    } else if (args[i] == "--help" || args[i] == "-h") {
      out << kStatusUsage;
      return 0;
    } else {
      err << "ckptwatch status: unexpected argument '" << Shown(args[i]) << "'\n" << kStatusUsage;
      return 2;
    }
  }
  if (socket_path.empty()) {
    if (config_path.empty() && access(kDefaultConfigPath, F_OK) == 0) config_path = kDefaultConfigPath;
    Config config = DefaultConfig();
    std::string error;
    if (!config_path.empty() && !LoadConfigFile(config_path, &config, &error)) {
      err << error << (error.empty() || error.back() != '\n' ? "\n" : "");
      return 2;
    }
    socket_path = StatusSocketPath(config.status);
  }
  std::string answer, error;
  if (!Ask(socket_path, &answer, &error)) {
    err << "ckptwatch status: " << Shown(error) << "\n";
    return 2;
  }
  StatusSnapshot status;
  if (!ParseStatusJson(answer, &status, &error)) {
    err << "ckptwatch status: " << error << "\n";
    return 2;
  }
  if (json) out << answer;
  else out << FormatStatus(status, status.unix_now);
  return status.AllWell() ? 0 : 1;
}

}  // namespace ckptwatch
