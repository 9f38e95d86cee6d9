#include "cli/verify_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <system_error>
#include <thread>

#include "base/open_beneath.h"
#include "base/text_escape.h"
#include "cli/set_output.h"
#include "report/logfmt.h"
#include "verify/engine/capabilities.h"
#include "verify/engine/page_cache.h"
#include "verify/engine/verifier_child.h"
#include "verify/engine/warm_spawn.h"
#include "verify/load_check.h"
#include "verify/sets/set_finder.h"
#include "verify/verify_open_file.h"

namespace ckptwatch {
namespace {

// Files one of this command's warm verifiers verifies before it is replaced. Here a replacement
// is an exec of the engine (ld.so, 25 shared objects, libhdf5's start-up: ~10 ms of CPU), where
// the daemon forks one from its zygote (kWarmDefaultMaxFiles, 64): at 64, 1,000 small files
// took 16 engine starts and 0.63 s, at 256 four and 0.44 s (bench/verify_many_bench.py; the
// warm h5py reader 0.37 s). What a verifier keeps between files is one owner's (security.md),
// and the recycling on a libhdf5 parse error, a crash or a timeout is unchanged.
constexpr std::size_t kCliWarmMaxFiles = 256;

constexpr char kVerifyUsage[] =
    "usage: ckptwatch verify [--level header|structure|full] [--json] [--recursive]\n"
    "                        [--timeout SECONDS] [--load-target keras=V,python=V]\n"
    "                        [-j N] PATH...\n"
    "\n"
    "Verifies weight files by their content: HDF5 (.h5, .weights.h5), Keras 3 (.keras),\n"
    "PyTorch (torch.save zip or legacy, TorchScript) and safetensors.\n"
    "A directory PATH verifies the *.h5, *.hdf5, *.keras, *.pt, *.pth, *.bin, *.ckpt and\n"
    "*.safetensors files in it (a *.bin that is no checkpoint is skipped).\n"
    "\n"
    "  --level LEVEL    header: superblock only (reads a few KiB);\n"
    "                   structure (default): every group, dataset, attribute and\n"
    "                   the Keras layout, through libhdf5;\n"
    "                   full: also reads every byte of every dataset (checksums,\n"
    "                   filters) and counts NaN/Inf.\n"
    "  --json           one JSON object per line per file\n"
    "  --recursive, -r  descend into subdirectories of directory PATHs\n"
    "  --timeout SECS   wall-clock limit per file (default 300)\n"
    "  --jobs, -j N     verify N files at a time (default: the number of CPUs);\n"
    "                   results are printed in order all the same\n"
    "  --load-target T  the environment that will load the files, e.g.\n"
    "                   keras=2.15,python=3.11: each ok file also gets a load\n"
    "                   outcome (loads, needs_custom_objects, incompatible)\n"
    "\n"
    "Checkpoint sets found among or around the PATHs (a TF bundle or SavedModel, a DCP\n"
    "directory, HF sharded weights, a Trainer checkpoint-N, DeepSpeed global_stepN, Megatron\n"
    "iter_N) get one more line each: ok, incomplete or inconsistent; resume pointers (latest,\n"
    "latest_checkpointed_iteration.txt, TF checkpoint, last.ckpt) naming a broken set are\n"
    "reported (see docs/checkpoint-sets.md).\n"
    "\n"
    "Exit status: 0 every file and set ok, 1 at least one not ok, 2 usage error.\n";

// kVerifyUsage and the verdicts, listed from the code's own list so the help cannot drift from it.
std::string Usage() {
  std::string text = kVerifyUsage, line = "Verdicts:";
  for (Verdict v : kAllVerdicts) {
    if (line.size() + 1 + VerdictName(v).size() > 88) {
      text += line + "\n";
      line = "         ";
    }
    line += ' ';
    line += VerdictName(v);  // not " " + std::string(...): GCC 12 warns falsely (PR 105329)
  }
  return text + line + "\n          (see docs/verify.md)\n";
}

struct Options {
  VerifyOptions verify;
  ChildLimits limits;
  bool json = false;
  bool recursive = false;
  bool help = false;
  std::size_t jobs = 0;  // 0: one per CPU
  LoadTarget load_target;
  std::vector<std::string> paths;
};

// Parses `args`; on error returns nullopt with *error set.
std::optional<Options> ParseOptions(const std::vector<std::string>& args, std::string* error) {
  Options options;
  bool only_paths = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (only_paths || arg.empty() || arg[0] != '-' || arg == "-") {
      options.paths.push_back(arg);
      continue;
    }
    std::optional<std::string> inline_value;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    auto value = [&]() -> std::optional<std::string> {
      if (inline_value) return inline_value;
      if (i + 1 < args.size()) return args[++i];
      *error = arg + " needs a value";
      return std::nullopt;
    };
    if (arg == "--") {
      only_paths = true;
    } else if (arg == "--help" || arg == "-h") {
      options.help = true;
    } else if (arg == "--json") {
      options.json = true;
    } else if (arg == "--recursive" || arg == "-r") {
      options.recursive = true;
    } else if (arg == "--level") {
      auto text = value();
      if (!text) return std::nullopt;
      auto level = ParseLevel(*text);
      if (!level) {
        *error = "unknown level '" + *text + "' (header, structure or full)";
        return std::nullopt;
      }
      options.verify.level = *level;
    } else if (arg == "--timeout") {
      auto text = value();
      if (!text) return std::nullopt;
      std::size_t used = 0;
      double seconds = 0;
      try {
        seconds = std::stod(*text, &used);
      } catch (const std::exception&) {
      }
      if (used != text->size() || !(seconds > 0) || seconds > 86400) {
        *error = "--timeout takes seconds between 0 and 86400, not '" + *text + "'";
        return std::nullopt;
      }
      options.limits.timeout_seconds = seconds;
    } else if (arg == "--jobs" || arg == "-j" || (arg.rfind("-j", 0) == 0 && arg.size() > 2)) {
      std::optional<std::string> text;
      if (arg.size() > 2 && arg[1] == 'j') {
        text = arg.substr(2);
      } else {
        text = value();
        if (!text) return std::nullopt;
      }
      std::size_t used = 0;
      unsigned long jobs = 0;
      try {
        jobs = std::stoul(*text, &used);
      } catch (const std::exception&) {
      }
      if (used != text->size() || jobs < 1 || jobs > 1024) {
        *error = "--jobs takes a number of files between 1 and 1024, not '" + *text + "'";
        return std::nullopt;
      }
      options.jobs = jobs;
    } else if (arg == "--load-target") {
      auto text = value();
      if (!text) return std::nullopt;
      std::string target_error;
      if (!ParseLoadTarget(*text, &options.load_target, &target_error)) {
        *error = "--load-target: " + target_error;
        return std::nullopt;
      }
    } else {
      *error = "unknown option " + arg;
      return std::nullopt;
    }
  }
  options.verify.memory_budget = options.limits.memory_bytes / 2;
  return options;
}

// The header level of an HDF5 file uses only our own bounds-checked parser:
// no child is needed, so a header check costs one process, not two. It still
// honours --timeout (a hung network filesystem can block a read): the check
// runs on a thread that is left behind, descriptor and all, if it overstays.
VerifyResult VerifyHeaderHere(std::shared_ptr<UniqueFd> fd, const std::string& path,
                              const Options& options) {
  // A header check reads near the start of the file and near its end (a zip's directory, the
  // end HDF5 promises). When both are cached (a file just written) no read will wait on a disk
  // or a server: checked right here, without the thread, which costs a fifth of the process.
  constexpr std::uint64_t kEdge = 1 << 20;
  struct stat st;
  if (fstat(fd->get(), &st) == 0) {
    const auto size = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t tail = std::min(size, kEdge);
    if (RangeCached(fd->get(), 0, std::min(size, kEdge)) && RangeCached(fd->get(), size - tail, tail))
      return VerifyOpenFileWith(fd->get(), path, options.verify, DeepReaders{});
  }
  auto promise = std::make_shared<std::promise<VerifyResult>>();
  std::future<VerifyResult> future = promise->get_future();
  std::thread([fd, path, verify = options.verify, promise] {
    promise->set_value(VerifyOpenFileWith(fd->get(), path, verify, DeepReaders{}));
  }).detach();
  if (future.wait_for(std::chrono::duration<double>(options.limits.timeout_seconds)) ==
      std::future_status::ready)
    return future.get();
  ChildOutcome outcome;
  outcome.timed_out = true;
  outcome.elapsed_ms = options.limits.timeout_seconds * 1000;
  return ResultFromChild(path, Level::kHeader, outcome, options.limits);
}

VerifyResult Verify(WarmSpawnPool& pool, const std::string& engine, const std::string& path,
                    const Options& options) {
  // Opened here, as the invoking user: a FIFO or device is never opened, and
  // the child gets only this descriptor.
  OpenedEntry file = OpenRegularFile(path);
  if (file.kind != EntryKind::kRegular) return UnopenedResult(path, file, options.verify.level);
  if (options.verify.level == Level::kHeader && !LooksLikeKerasArchive(path, file.fd.get()))
    return VerifyHeaderHere(std::make_shared<UniqueFd>(std::move(file.fd)), path, options);
  // A warm verifier of the file's owner (warm_spawn.h); a one-shot child when none can take it.
  std::optional<VerifyResult> warm = pool.Verify(file.fd.get(), file.st.st_uid, path, options.verify);
  VerifyResult result =
      warm ? std::move(*warm) : VerifyInChild(engine, file.fd.get(), path, options.verify, options.limits);
  // The child sees the file a moment after it was opened here: a save that
  // truncated it in between makes a broken verdict about a save under way.
  if (!result.ok() && result.verdict != Verdict::kInProgress) MarkIfChanged(file.fd.get(), file.st, &result);
  return result;
}

// What FindSets() found in the directory of a file PATH, with its pointers judged: the same for
// every file of that directory. Kept while the files named one after another share a directory
// (`verify dir/*.h5`): found again for each, a command over N files of one directory listed and
// recognised that directory N times (O(N²): 42 % of the command's CPU at N = 500). One
// directory only, so that a command over files of many directories holds one's descriptors.
struct DirSets {
  std::string dir;
  FoundSets found;
  std::optional<std::vector<PointerReport>> pointers;  // judged after the sets, as before
};

// Prints the checkpoint sets among and around `path` (one verdict per save:
// docs/checkpoint-sets.md) and the resume pointers naming them, each once over the whole command;
// returns how many sets concern `path`. A file PATH brings in the sets it belongs to (and the
// pointer it is), not its neighbours'.
std::size_t PrintSetsOf(const std::string& path, const Options& options,
                        const SetCheckOptions& set_options, std::ostream& out, bool* all_ok,
                        std::map<std::string, std::size_t>* sets_by_verdict,
                        std::set<std::string>* sets_seen, std::set<std::string>* pointers_seen,
                        std::optional<DirSets>* last_dir) {
  std::error_code type_ec;
  const bool file_path = !std::filesystem::is_directory(path, type_ec);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  std::optional<DirSets> of_directory;  // a directory PATH's: not kept
  std::optional<DirSets>& sets = file_path ? *last_dir : of_directory;
  if (!sets || sets->dir != dir) {
    std::string set_error;
    sets = DirSets{dir, FindSets(path, options.recursive, set_options, &set_error), {}};
  }
  const FoundSets& found = sets->found;
  std::size_t sets_here = 0;
  const std::string base = std::filesystem::path(path).filename().string();
  auto concerns_file = [&](const SetReport& report) {
    return report.path == path ||
           std::find(report.members.begin(), report.members.end(), base) != report.members.end() ||
           std::find(report.missing.begin(), report.missing.end(), base) != report.missing.end();
  };
  for (const SetCandidate& set : found.sets) {
    if (file_path && !concerns_file(set.Check())) continue;
    ++sets_here;
    if (!sets_seen->insert(set.path()).second) continue;
    const SetReport& report = set.Check();
    *all_ok = *all_ok && report.ok();
    ++(*sets_by_verdict)[SetVerdictName(report.verdict)];
    out << (options.json ? DumpJsonLine(SetToJson(report)) : SetTextLine(report)) << "\n";
    out.flush();
  }
  if (!sets->pointers) sets->pointers = JudgePointers(found);
  for (const PointerReport& pointer : *sets->pointers) {
    if (file_path && std::filesystem::path(pointer.path).filename() != base) continue;
    if (!pointers_seen->insert(pointer.path).second) continue;
    if (pointer.verdict != "ok") *all_ok = false;
    if (options.json)
      out << DumpJsonLine(PointerToJson(pointer)) << "\n";
    else if (pointer.verdict != "ok")
      out << PointerTextLine(pointer) << "\n";
  }
  return sets_here;
}

}  // namespace

MemberCheck VerifyMember(const std::string& engine, int fd, const std::string& path, Level level,
                         double timeout_seconds) {
  VerifyOptions verify;
  verify.level = level;
  ChildLimits limits;
  limits.timeout_seconds = timeout_seconds;
  verify.memory_budget = limits.memory_bytes / 2;
  VerifyResult result = level == Level::kHeader ? VerifyOpenFileWith(fd, path, verify, DeepReaders{})
                                                : VerifyInChild(engine, fd, path, verify, limits);
  return {result.verdict, result.reason};
}

bool IsWeightFileName(const std::string& name) {
  for (const char* suffix : {".h5", ".hdf5", ".keras", ".pt", ".pth", ".bin", ".ckpt", ".safetensors"}) {
    std::size_t n = std::char_traits<char>::length(suffix);
    if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0) return true;
  }
  return false;
}

std::vector<std::string> CollectWeightFiles(const std::string& path, bool recursive,
                                            std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<std::string> files;
  auto consider = [&](const fs::directory_entry& entry) {
    std::error_code type_ec;
    if (entry.is_regular_file(type_ec) && IsWeightFileName(entry.path().filename().string()))
      files.push_back(entry.path().string());
  };
  if (recursive) {
    fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) consider(*it);
  } else {
    fs::directory_iterator it(path, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) consider(*it);
  }
  if (ec) *error = "cannot list " + path + ": " + ec.message();
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

// Waits until `ready`; with a `terminal`, a read that takes longer than 2 s (a large file at
// `full`, slow storage) gets a line saying which file and for how long, rewritten each second
// and erased when the verdict comes, so a long `verify` does not look hung.
template <typename Ready>
void WaitShowingProgress(std::unique_lock<std::mutex>& lock, std::condition_variable& changed,
                         Ready ready, std::ostream* terminal, const std::string& file,
                         std::size_t n, std::size_t of) {
  if (terminal == nullptr) return changed.wait(lock, ready);
  const auto since = std::chrono::steady_clock::now();
  bool shown = false;
  while (!changed.wait_for(lock, std::chrono::seconds(1), ready)) {
    const auto waited =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - since);
    if (waited.count() < 2) continue;
    *terminal << "\r\033[Kckptwatch verify: reading " << EscapeForDisplay(file, false) << " (" << n
              << " of " << of << ", " << waited.count() << " s)" << std::flush;
    shown = true;
  }
  if (shown) *terminal << "\r\033[K" << std::flush;
}

}  // namespace

int RunVerifyCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                     const std::string& engine) {
  std::string error;
  std::optional<Options> options = ParseOptions(args, &error);
  if (!options) {
    err << "ckptwatch verify: " << EscapeForDisplay(error, false) << "\n\n" << Usage();
    return 2;
  }
  if (options->help) {
    out << Usage();
    return 0;
  }
  if (options->paths.empty()) {
    err << "ckptwatch verify: no PATH given\n\n" << kVerifyUsage;
    return 2;
  }

  // Capabilities (an ambient CAP_DAC_READ_SEARCH, a file capability) would
  // let this command describe files its user cannot read: it reads with the
  // user's own permissions. Root may read everything anyway.
  if (getuid() != 0) {
    std::string cap_error;
    if (!DropCapabilities(&cap_error)) {
      err << "ckptwatch verify: cannot drop capabilities: " << cap_error << "\n";
      return 2;
    }
  }
  // Paths reach these messages from a shell glob as often as from a person: printed escaped,
  // like every field of a verdict line (FormatTextLine()), so a file name cannot rewrite the
  // terminal.
  struct Item {
    std::string file;
    bool found_in_directory;
  };
  bool all_ok = true;
  // Every file of every PATH is listed first, so that -j workers can take them all; the output
  // goes PATH by PATH, each PATH's checkpoint sets after its files.
  std::vector<Item> items;
  std::vector<std::size_t> path_end;  // the items of paths[k] end at path_end[k]
  std::vector<bool> path_listed;      // its listing did not fail
  for (const std::string& path : options->paths) {
    std::string list_error;
    std::vector<std::string> files = CollectWeightFiles(path, options->recursive, &list_error);
    if (!list_error.empty()) {
      err << "ckptwatch verify: " << EscapeForDisplay(list_error, false) << "\n";
      all_ok = false;
    }
    for (std::string& file : files) {
      const bool found = file != path;
      items.push_back({std::move(file), found});
    }
    path_end.push_back(items.size());
    path_listed.push_back(list_error.empty());
  }

  // -j workers take files in order; this thread prints each verdict as soon as every one before
  // it is printed, so the output is the same whatever N is.
  std::size_t jobs = options->jobs ? options->jobs : std::max(1u, std::thread::hardware_concurrency());
  jobs = std::min(jobs, std::max<std::size_t>(items.size(), 1));
  WarmSpawnPool pool(engine, options->limits, kCliWarmMaxFiles, jobs);
  std::vector<std::optional<VerifyResult>> results(items.size());
  std::mutex mutex;
  std::condition_variable changed;
  std::size_t next = 0, finished = 0;
  bool closed = false;
  auto work = [&] {
    for (;;) {
      std::size_t i;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (next >= items.size()) break;
        i = next++;
      }
      VerifyResult result = Verify(pool, engine, items[i].file, *options);
      {
        std::lock_guard<std::mutex> lock(mutex);
        results[i] = std::move(result);
      }
      changed.notify_all();
    }
    // A warm verifier dies with the thread that spawned it (PR_SET_PDEATHSIG), and another
    // worker may be using it: the last worker to finish reaps them all, the others wait.
    std::unique_lock<std::mutex> lock(mutex);
    if (++finished == jobs) {
      lock.unlock();
      pool.CloseAll();
      lock.lock();
      closed = true;
      changed.notify_all();
    } else {
      changed.wait(lock, [&] { return closed; });
    }
  };
  std::vector<std::thread> workers;
  for (std::size_t w = 0; w < jobs; ++w) workers.emplace_back(work);

  // Only a person at a terminal gets a sign of life: stderr that is a pipe or a file (scripts,
  // tests) holds diagnostics and the summary line alone.
  const bool progress = &err == &std::cerr && isatty(STDERR_FILENO) == 1;
  std::size_t verified = 0;
  std::map<std::string, std::size_t> by_verdict, sets_by_verdict;
  // A set's members that were verified as files are not verified again.
  std::map<std::string, MemberCheck> verified_files;
  SetCheckOptions set_options;
  set_options.level = options->verify.level;
  set_options.verify_member = [&](int fd, const std::string& path) {
    auto it = verified_files.find(path);
    if (it != verified_files.end()) return it->second;
    return VerifyMember(engine, fd, path, options->verify.level, options->limits.timeout_seconds);
  };
  std::set<std::string> sets_seen, pointers_seen;
  std::optional<DirSets> last_dir;
  std::size_t i = 0;
  for (std::size_t k = 0; k < options->paths.size(); ++k) {
    const std::string& path = options->paths[k];
    const std::size_t first = i;
    for (; i < path_end[k]; ++i) {
      VerifyResult result;
      {
        std::unique_lock<std::mutex> lock(mutex);
        WaitShowingProgress(
            lock, changed, [&] { return results[i].has_value(); }, progress ? &err : nullptr,
            items[i].file, i + 1, items.size());
        result = std::move(*results[i]);
        results[i].reset();
      }
      // Found by a directory scan, a .bin of another program is not a weight file.
      if (items[i].found_in_directory && IsQuietlySkipped(items[i].file, result)) continue;
      all_ok = all_ok && result.ok();
      ++verified;
      ++by_verdict[std::string(VerdictName(result.verdict))];
      verified_files[items[i].file] = {result.verdict, result.reason};
      result.load = JudgeLoad(result, options->load_target);
      if (options->json)
        out << DumpJsonLine(ToJson(result)) << "\n";
      else
        out << FormatTextLine(result) << "\n";
      out.flush();
    }
    const std::size_t sets_here =
        PrintSetsOf(path, *options, set_options, out, &all_ok, &sets_by_verdict, &sets_seen,
                    &pointers_seen, &last_dir);
    if (first == path_end[k] && sets_here == 0 && path_listed[k])
      err << "ckptwatch verify: no weight files (*.h5, *.hdf5, *.keras, *.pt, *.pth, *.bin, "
             "*.ckpt, *.safetensors) or checkpoint sets in "
          << EscapeForDisplay(path, false) << "\n";
  }
  for (std::thread& worker : workers) worker.join();
  if (verified > 1) err << "ckptwatch verify: " << FormatVerifySummary(by_verdict) << "\n";
  if (!sets_by_verdict.empty()) {
    std::string text = FormatVerifySummary(sets_by_verdict);
    text.replace(0, text.find(':'), std::to_string(sets_seen.size()) +
                                        (sets_seen.size() == 1 ? " checkpoint set" : " checkpoint sets"));
    err << "ckptwatch verify: " << text << "\n";
  }
  return all_ok && (verified > 0 || !sets_seen.empty()) ? 0 : 1;
}

std::string FormatVerifySummary(const std::map<std::string, std::size_t>& by_verdict) {
  std::vector<std::pair<std::size_t, std::string>> order;
  std::size_t total = 0;
  for (const auto& [verdict, n] : by_verdict) {
    order.emplace_back(n, verdict);
    total += n;
  }
  // ok first (the answer to "is it all fine?"), then the rest, most frequent first.
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    if ((a.second == "ok") != (b.second == "ok")) return a.second == "ok";
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::string text = std::to_string(total) + (total == 1 ? " file: " : " files: ");
  for (std::size_t i = 0; i < order.size(); ++i)
    text += (i ? ", " : "") + std::to_string(order[i].first) + " " + order[i].second;
  return text;
}

}  // namespace ckptwatch
