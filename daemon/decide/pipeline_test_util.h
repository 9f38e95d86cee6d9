// The fixture of the pipeline tests: a Pipeline wired to the fakes, and the
// steps a test takes — write a file, deliver the event, let time pass, answer
// a verification — each in virtual time.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "decide/pipeline.h"
#include "decide/pipeline_fakes.h"

namespace ckptwatch::testing {

class PipelineTest : public ::testing::Test {
 protected:
  static constexpr const char* kRoot = "/ckpt";

  /// Starts a pipeline on `watches_yaml` (the `watches:` list) plus `extra` top-level YAML.
  void Start(const std::string& watches_yaml, const std::string& extra = "") {
    env_.MakeDir(kRoot);
    Load(watches_yaml, extra, &config_);
    pipeline_ = std::make_unique<Pipeline>(config_, env_, &watcher_, scanner_, verifier_, judge_, reporter_, limits_);
    if (restore_) pipeline_->Restore(*restore_);
    pipeline_->Start();
    FinishScans();
  }
  /// One watch on kRoot with `keys`, started with its first scan still running (the test
  /// finishes it, with what the tree holds then, by its next step).
  void StartOneHoldingFirstScan(const std::string& keys) {
    env_.MakeDir(kRoot);
    Load(Watch("run", kRoot, keys), "", &config_);
    pipeline_ = std::make_unique<Pipeline>(config_, env_, &watcher_, scanner_, verifier_, judge_, reporter_, limits_);
    pipeline_->Start();
  }
  /// One watch on kRoot with `keys` (YAML flow-map entries, e.g. "settle: 2s").
  void StartOne(const std::string& keys = "", const std::string& extra = "") {
    Start(Watch("run", kRoot, keys), extra);
  }
  static std::string Watch(const std::string& name, const std::string& path, const std::string& keys) {
    return "  - {name: " + name + ", path: " + path + (keys.empty() ? "" : ", " + keys) + "}\n";
  }
  void Load(const std::string& watches_yaml, const std::string& extra, Config* out) {
    const std::string yaml = "metrics: {listen: \"127.0.0.1:19999\"}\n" + extra + "watches:\n" + watches_yaml;
    std::string err;
    ASSERT_TRUE(LoadConfigString(yaml, "/etc/ckptwatch/test.yaml", out, &err)) << err;
  }
  bool Reload(const std::string& watches_yaml, const std::string& extra = "") {
    Config next;
    Load(watches_yaml, extra, &next);
    std::string err;
    bool ok = pipeline_->Reload(next, &err);
    FinishScans();
    return ok;
  }

  static std::string P(const std::string& name) { return std::string(kRoot) + "/" + name; }

  /// Delivers one watcher event for the watch of `watch_path`.
  void Event(WatchEvent::Kind kind, const std::string& path, const std::string& watch_path = kRoot) {
    WatchEvent event;
    event.kind = kind;
    event.watch_id = watcher_.IdOf(watch_path);
    event.path = path;
    pipeline_->OnWatchEvent(event);
    FinishScans();
  }
  /// A writer saved `path` (`size` bytes) and closed it.
  void Save(const std::string& path, std::uint64_t size = 4096) {
    env_.Write(path, size);
    Event(WatchEvent::Kind::kFileWritten, path);
  }
  /// Completes every scan the pipeline asked for with what the tree holds now.
  void FinishScans() {
    while (!scanner_.requests.empty()) {
      ScanRequest request = scanner_.requests.front();
      scanner_.requests.erase(scanner_.requests.begin());
      ScanResult result;
      result.request = request;
      const std::string top = request.relative.empty() ? request.root_path : request.root_path + "/" + request.relative;
      result.ok = env_.HasDir(top);
      if (result.ok) result.snapshot = env_.List(request.root_path, request.relative, request.recursive);
      else result.error_code = ENOENT;
      pipeline_->OnScanDone(result);
    }
  }
  /// Lets `d` pass, dispatching whatever settles on the way.
  void Pass(std::chrono::milliseconds d) {
    const auto until = env_.Now() + d;
    while (true) {
      auto next = pipeline_->NextDeadline();
      if (!next || *next > until) break;
      if (*next > env_.Now()) env_.Advance(std::chrono::duration_cast<std::chrono::milliseconds>(*next - env_.Now()));
      pipeline_->OnSettleDue();
      FinishScans();
    }
    if (until > env_.Now()) env_.Advance(std::chrono::duration_cast<std::chrono::milliseconds>(until - env_.Now()));
  }
  /// Lets time pass one tick at a time (housekeeping), for `seconds`.
  void Ticks(int seconds) {
    for (int i = 0; i < seconds; ++i) {
      Pass(std::chrono::seconds(1));
      pipeline_->OnTick();
      FinishScans();
    }
  }
  /// Answers the oldest judgement of checkpoint sets with `events` (DescribeSet(),
  /// DescribePointer() of what the directory holds).
  void AnswerSets(std::vector<CheckpointEvent> events) {
    ASSERT_FALSE(judge_.requests.empty()) << "no judgement of checkpoint sets was requested";
    SetJudgeResult result{judge_.requests.front(), std::move(events)};
    judge_.requests.erase(judge_.requests.begin());
    pipeline_->OnSetsJudged(result);
    FinishScans();
  }
  /// The verification requests not answered yet.
  std::vector<VerifyJob>& Jobs() { return verifier_.jobs; }
  /// Answers the oldest request with `verdict`.
  void Answer(Verdict verdict, std::uint64_t bytes = 4096, std::string reason = "") {
    AnswerWith([&](VerifyResult& result) {
      result.verdict = verdict;
      result.bytes = bytes;
      result.reason = reason.empty() ? "because " + std::string(VerdictName(verdict)) : reason;
    });
  }
  /// Answers the oldest request with the result `fill` makes (path and level already set).
  void AnswerWith(const std::function<void(VerifyResult&)>& fill) {
    ASSERT_FALSE(verifier_.jobs.empty()) << "no verification was requested";
    VerifyJob job = verifier_.jobs.front();
    verifier_.jobs.erase(verifier_.jobs.begin());
    VerifyResult result;
    result.path = job.path;
    result.level = job.options.level;
    fill(result);
    pipeline_->OnVerified(job, result);
    FinishScans();
  }
  /// Answers every request ok.
  void AnswerAllOk() {
    while (!verifier_.jobs.empty()) Answer(Verdict::kOk);
  }
  /// A verdict reported with its `verify` line (a repeat within log.repeat_every has none).
  struct LoggedVerdict : VerdictReached {
    LogLevel line_level;
    std::map<std::string, std::string> fields;  ///< the line's, by key
    std::string msg;
  };
  /// The verdicts of `path` that were logged, in order.
  std::vector<LoggedVerdict> Verdicts(const std::string& path) const {
    std::vector<LoggedVerdict> out;
    for (const VerdictReached& v : reporter_.Of<VerdictReached>()) {
      if (v.path != path || !v.line) continue;
      LoggedVerdict l{v, v.line->level, {}, v.line->message};
      for (const auto& [k, value] : v.line->fields) l.fields[k] = value;
      out.push_back(std::move(l));
    }
    return out;
  }
  /// True when no event mentions `text` anywhere (no log line or metric label would).
  bool NeverLogged(const std::string& text) const { return !reporter_.Mentions(text); }

  FakeEnv env_;
  FakeWatcher watcher_;
  FakeScanner scanner_;
  FakeVerifier verifier_;
  FakeSetJudge judge_;
  FakeReporter reporter_;
  Config config_;
  PipelineLimits limits_;  ///< Set before Start() to shrink the pipeline's bounds.
  std::optional<SavedState> restore_;  ///< Set before Start(): what a previous run saved.
  std::unique_ptr<Pipeline> pipeline_;
};

}  // namespace ckptwatch::testing
