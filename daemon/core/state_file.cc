#include "core/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
#include "base/write_all.h"
#include "verify/verdict.h"

namespace ckptwatch {
namespace {

using nlohmann::json;

constexpr int kStateFileVersion = 1;
// A state file larger than this was not written by ckptwatch (each watch
// keeps at most 20,000 files, about 3 MiB).
constexpr off_t kMaxBytes = 64 << 20;
constexpr std::size_t kMaxFilesPerWatch = 20000;

json FileJson(const SavedFile& f) {
  return json::array({f.path, f.stat.size, f.stat.mtime_ns, f.stat.ino, f.verdict, f.cause, f.since_unix});
}

// One file entry: [path, size, mtime_ns, inode, verdict, cause, since_unix].
// Every field's JSON type is checked before it is read: get<>() on the wrong
// type throws, and a state file must never stop the daemon from starting.
bool FileFrom(const json& j, SavedFile* f) {
  if (!j.is_array() || j.size() != 7 || !j[0].is_string() || !j[1].is_number_unsigned() ||
      !j[2].is_number_integer() || !j[3].is_number_unsigned() || !j[4].is_string() || !j[5].is_string() ||
      !j[6].is_number())
    return false;
  f->path = j[0].get<std::string>();
  f->stat = {j[1].get<std::uint64_t>(), j[2].get<std::int64_t>(), j[3].get<std::uint64_t>()};
  f->verdict = j[4].get<std::string>();
  f->cause = j[5].get<std::string>();
  f->since_unix = j[6].get<double>();
  // Only what the pipeline itself stores is restored: a verdict's name, and a
  // cause that is empty, disk_full or a verdict's name (save_cause.h).
  const std::optional<Verdict> verdict = ParseVerdict(f->verdict);
  const std::optional<Verdict> cause_verdict = ParseVerdict(f->cause);
  const bool known_cause = f->cause.empty() || f->cause == "disk_full" || cause_verdict;
  if (f->path.empty() || f->path[0] != '/' || !verdict || !known_cause) return false;
  // Names an older version wrote (not_hdf5) come back under today's name.
  f->verdict = VerdictName(*verdict);
  if (cause_verdict) f->cause = VerdictName(*cause_verdict);
  return true;
}

// The state in `j`, or false with `*err` naming what is wrong.
bool FromJson(const json& j, const std::string& path, SavedState* out, std::string* err) {
  if (j.is_discarded() || !j.is_object() || !j.contains("version") ||
      j["version"] != kStateFileVersion || !j.contains("watches") || !j["watches"].is_object()) {
    *err =
        path + " is not a ckptwatch state file (version " + std::to_string(kStateFileVersion) + ")";
    return false;
  }
  for (const auto& [name, wj] : j["watches"].items()) {
    if (!wj.is_object() || !wj.contains("path") || !wj["path"].is_string() ||
        !wj.contains("files") || !wj["files"].is_array()) {
      *err = path + ": watch " + name + " is malformed";
      return false;
    }
    SavedWatch w;
    w.path = wj["path"].get<std::string>();
    for (const json& fj : wj["files"]) {
      if (w.files.size() >= kMaxFilesPerWatch) break;
      SavedFile f;
      if (!FileFrom(fj, &f)) {
        *err = path + ": a file entry of watch " + name + " is malformed";
        return false;
      }
      w.files.push_back(std::move(f));
    }
    if (wj.contains("last_good")) {
      SavedFile f;
      if (FileFrom(wj["last_good"], &f)) w.last_good = std::move(f);
    }
    out->watches[name] = std::move(w);
  }
  return true;
}

std::string FileError(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

std::string StateFilePath(const Config& config) {
  if (!config.state.file.empty()) return config.state.file;
  const char* dirs = std::getenv("STATE_DIRECTORY");
  if (!dirs || dirs[0] != '/') return "";
  std::string first(dirs);
  first = first.substr(0, first.find(':'));
  return first + "/state.json";
}

bool LoadStateFile(const std::string& path, SavedState* out, std::string* err) {
  *out = {};
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return true;
    *err = FileError("cannot open " + path);
    return false;
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxBytes) {
    *err = path + " is not a regular file of at most 64 MiB";
    return false;
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = read(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  text.resize(done);
  return ParseStateText(text, path, out, err);
}

bool ParseStateText(std::string_view text, const std::string& path, SavedState* out,
                    std::string* err) {
  *out = {};
  // The checks in FromJson() leave nothing for nlohmann to throw on; this
  // catch is the wrapper's edge all the same, so that a check forgotten
  // there costs a warning (state_ignored), never the daemon's start.
  try {
    if (FromJson(json::parse(text, nullptr, /*allow_exceptions=*/false), path, out, err))
      return true;
  } catch (const json::exception& e) {
    *err = path + " is not a ckptwatch state file: " + e.what();
  }
  *out = {};
  return false;
}

std::string StateFileText(const SavedState& state) {
  json watches = json::object();
  for (const auto& [name, w] : state.watches) {
    json files = json::array();
    for (const SavedFile& f : w.files) {
      if (files.size() >= kMaxFilesPerWatch) break;
      files.push_back(FileJson(f));
    }
    json wj = {{"path", w.path}, {"files", std::move(files)}};
    if (w.last_good) wj["last_good"] = FileJson(*w.last_good);
    watches[name] = std::move(wj);
  }
  const json j = {{"version", kStateFileVersion}, {"watches", std::move(watches)}};
  // A name that is not UTF-8 is stored with replacement characters: it will
  // not match on restore, so that file is verified again. Nothing worse.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

bool WriteStateFile(const std::string& path, const SavedState& state, std::string* err) {
  const std::string text = StateFileText(state);
  const std::string tmp = path + ".tmp";
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640));
  if (!fd.valid()) {
    *err = FileError("cannot write " + tmp);
    return false;
  }
  if (!WriteAll(fd.get(), text.data(), text.size()) || fsync(fd.get()) != 0) {
    *err = FileError("cannot write " + tmp);
    unlink(tmp.c_str());
    return false;
  }
  fd.reset();
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    *err = FileError("cannot replace " + path);
    unlink(tmp.c_str());
    return false;
  }
  const std::string dir = path.substr(0, path.rfind('/'));
  UniqueFd dfd(open(dir.empty() ? "/" : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.valid()) fsync(dfd.get());
  return true;
}

}  // namespace ckptwatch
