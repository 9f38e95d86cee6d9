// Loading: every key, its defaults, and the errors a bad file gets (with file:line).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/config_test_util.h"

namespace ckptwatch {
namespace {

using namespace ckptwatch::testing;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

TEST(Config, DefaultWatchesCheckpointsInTheWorkingDirectory) {
  const Config config = DefaultConfig();
  ASSERT_EQ(config.watches.size(), 1u);
  EXPECT_EQ(config.watches[0].path, (fs::current_path() / "checkpoints").string());
  EXPECT_EQ(config.metrics.listen, "127.0.0.1:" + std::to_string(kDefaultMetricsPort));
  EXPECT_EQ(config.log.file, "");
  EXPECT_EQ(config.log.format, LogFormat::kText);
}

TEST(Config, FillsEveryDefault) {
  const Config config = Load(kOneWatch);
  EXPECT_EQ(config.log.file, "");
  EXPECT_EQ(config.log.format, LogFormat::kText);
  EXPECT_EQ(config.log.level, LogLevel::kInfo);
  EXPECT_EQ(config.log.summary_every, milliseconds(10 * 60'000));
  EXPECT_EQ(config.metrics.listen, "127.0.0.1:19842");
  EXPECT_EQ(config.metrics.basic_auth_username, "");
  EXPECT_EQ(config.verify.level, Level::kFull);           // NaN/Inf found by default ...
  EXPECT_EQ(config.verify.full_max_bytes, 256ull << 20);  // ... where reading it all costs little
  EXPECT_EQ(config.verify.max_parallel, 2);
  EXPECT_EQ(config.verify.timeout, milliseconds(300'000));
  EXPECT_EQ(config.verify.memory_limit, 2ull << 30);
  EXPECT_EQ(config.verify.queue_limit, 10000);
  ASSERT_EQ(config.watches.size(), 1u);
  const WatchConfig& w = config.watches[0];
  EXPECT_EQ(w.name, "run42");
  EXPECT_EQ(w.path, "/data/ckpt/run42");
  EXPECT_FALSE(w.recursive);
  EXPECT_EQ(w.patterns, (std::vector<std::string>{"*.h5", "*.hdf5", "*.keras", "*.pt", "*.pth", "*.bin",
                                                  "*.ckpt", "*.safetensors"}));
  EXPECT_EQ(w.backend, WatchBackend::kAuto);
  EXPECT_EQ(w.poll_interval, milliseconds(10'000));
  EXPECT_EQ(w.settle, milliseconds(1'000));
  EXPECT_EQ(w.level, Level::kFull);
  EXPECT_FALSE(w.expect_every);
  EXPECT_FALSE(w.min_free);
  EXPECT_FALSE(w.writer);
  EXPECT_TRUE(w.readers.empty());
}

TEST(Config, LoadsEveryKey) {
  const Config config = Load(R"(
log: {file: /var/log/ckptwatch/ckptwatch.log, format: json, level: debug, summary_every: 1h}
metrics:
  listen: "[::1]:9100"
  basic_auth: {username: scraper, password_file: metrics.pass}
verify: {level: header, full_max_bytes: 1GB, max_parallel: 8, timeout: 90s,
         memory_limit: 512MiB, queue_limit: 5}
watches:
  - name: run-42.a
    path: /data/ckpt/run42
    recursive: true
    patterns: ["*.h5"]
    backend: poll
    poll_interval: 500ms
    settle: 0s
    level: full
    expect_every: 1h30m
    min_free: 10GiB
    writer: root
    readers: [root, "group:root", "1234"]
)");
  EXPECT_EQ(config.log.file, "/var/log/ckptwatch/ckptwatch.log");
  EXPECT_EQ(config.log.format, LogFormat::kJson);
  EXPECT_EQ(config.log.level, LogLevel::kDebug);
  EXPECT_EQ(config.log.summary_every, milliseconds(3'600'000));
  EXPECT_EQ(config.metrics.listen, "[::1]:9100");
  EXPECT_EQ(config.metrics.basic_auth_username, "scraper");
  EXPECT_EQ(config.metrics.basic_auth_password_file, "/etc/ckptwatch/metrics.pass");
  EXPECT_EQ(config.verify.level, Level::kHeader);
  EXPECT_EQ(config.verify.full_max_bytes, 1'000'000'000u);
  EXPECT_EQ(config.verify.max_parallel, 8);
  EXPECT_EQ(config.verify.timeout, milliseconds(90'000));
  EXPECT_EQ(config.verify.memory_limit, 512u << 20);
  EXPECT_EQ(config.verify.queue_limit, 5);
  const WatchConfig& w = config.watches.at(0);
  EXPECT_EQ(w.name, "run-42.a");
  EXPECT_TRUE(w.recursive);
  EXPECT_EQ(w.patterns, std::vector<std::string>{"*.h5"});
  EXPECT_EQ(w.backend, WatchBackend::kPoll);
  EXPECT_EQ(w.poll_interval, milliseconds(500));
  EXPECT_EQ(w.settle, milliseconds(0));
  EXPECT_EQ(w.level, Level::kFull);
  EXPECT_EQ(w.expect_every, milliseconds(5'400'000));
  EXPECT_EQ(w.min_free, (SpaceThreshold{.is_percent = false, .bytes = 10ull << 30, .percent = 0}));
  ASSERT_TRUE(w.writer);
  EXPECT_EQ(*w.writer, (Principal{Principal::Kind::kUser, 0, "root"}));
  EXPECT_EQ(w.readers, (std::vector<Principal>{{Principal::Kind::kUser, 0, "root"},
                                               {Principal::Kind::kGroup, 0, "root"},
                                               {Principal::Kind::kUser, 1234, "1234"}}));
}

TEST(Config, AcceptsPercentMinFree) {
  const Config config = Load(std::string(kOneWatch) + "    min_free: 5%\n");
  ASSERT_TRUE(config.watches[0].min_free);
  EXPECT_TRUE(config.watches[0].min_free->is_percent);
  EXPECT_EQ(config.watches[0].min_free->percent, 5.0);
  EXPECT_EQ(config.watches[0].min_free->BytesOf(1000), 50u);
}

TEST(Config, RunDepthNamesARunBelowARecursiveRoot) {
  const Config config =
      Load("watches:\n  - path: /srv/runs\n    recursive: true\n    run_depth: 1\n");
  EXPECT_EQ(config.watches[0].run_depth, 1);
  EXPECT_EQ(config.watches[0].max_runs, 100);
  EXPECT_EQ(Load(std::string(kOneWatch)).watches[0].run_depth, 0);
  EXPECT_EQ(Error("watches:\n"
                  "  - path: /srv/runs\n"
                  "    run_depth: 1\n"),
            "ckptwatch.yaml:3:5: watches[0].run_depth: needs recursive: true (a run is a "
            "directory below the root)");
  EXPECT_NE(Error("watches:\n  - {path: /srv/runs, recursive: true, max_runs: 0}\n")
                .find("max_runs: '0' is out of range"),
            std::string::npos);
}

TEST(Config, RejectsUnknownKeyWithSuggestionAndLine) {
  EXPECT_EQ(Error("watches:\n"
                  "  - path: /data\n"
                  "    expect_evry: 30m\n"),
            "ckptwatch.yaml:3:5: watches[0].expect_evry: unknown key; did you mean "
            "'expect_every'?");
  EXPECT_EQ(Error(std::string(kOneWatch) + "verify: {max_paralel: 2}\n"),
            "ckptwatch.yaml:3:10: verify.max_paralel: unknown key; did you mean 'max_parallel'?");
}

TEST(Config, SuggestsWhereAMisplacedKeyBelongs) {
  EXPECT_EQ(Error(std::string(kOneWatch) + "level: full\n"),
            "ckptwatch.yaml:3:1: level: unknown key; did you mean log.level, verify.level or "
            "watches[].level?");
  EXPECT_EQ(Error(std::string(kOneWatch) + "bogus: 1\n"),
            "ckptwatch.yaml:3:1: bogus: unknown key (known here: log, metrics, verify, state, status, watches)");
}

TEST(Config, RejectsDottedKeys) {
  EXPECT_EQ(Error(std::string(kOneWatch) + "log.level: info\n"),
            "ckptwatch.yaml:3:1: log.level: unknown key; write nested maps, not dotted names (e.g. "
            "log: {level: info})");
  EXPECT_NE(Error(std::string(kOneWatch) + "watches[].name: x\n").find("unknown key"),
            std::string::npos);
  EXPECT_NE(Error(std::string(kOneWatch) + "watches[]: {name: x}\n").find("unknown key"),
            std::string::npos);
}

TEST(Config, RejectsWrongTypesWithLine) {
  EXPECT_EQ(Error(std::string(kOneWatch) + "    settle: [1s]\n"),
            "ckptwatch.yaml:3:13: watches[0].settle: expected a duration, got a list");
  EXPECT_EQ(Error(std::string(kOneWatch) + "    patterns: '*.h5'\n"),
            "ckptwatch.yaml:3:15: watches[0].patterns: expected a list, got a scalar");
  EXPECT_EQ(Error(std::string(kOneWatch) + "log: stderr\n"),
            "ckptwatch.yaml:3:6: log: expected a map of keys (file, format, level, "
            "summary_every, repeat_every), got a scalar");
  EXPECT_EQ(Error("watches: /data\n"),
            "ckptwatch.yaml:1:10: watches: expected a list of watches (\"- path: ...\"), got a "
            "scalar");
  EXPECT_EQ(Error("- path: /data\n"),
            "ckptwatch.yaml:1:1: expected a map of sections (log, metrics, verify, watches), got "
            "a list");
  EXPECT_EQ(Error(std::string(kOneWatch) + "    readers: [[root]]\n"),
            "ckptwatch.yaml:3:15: watches[0].readers[0]: expected a string, got a list");
  EXPECT_EQ(Error(std::string(kOneWatch) + "verify: {max_parallel: 2.5}\n"),
            "ckptwatch.yaml:3:24: verify.max_parallel: '2.5' is not an integer (e.g. 4)");
}

TEST(Config, RejectsBadDurationWithLineAndExamples) {
  EXPECT_EQ(Error("watches:\n  - path: /data\n    settle: 1 sec\n"),
            "ckptwatch.yaml:3:13: watches[0].settle: '1 sec' is not a duration (e.g. 500ms, 10s, "
            "5m, 1h30m)");
  EXPECT_EQ(Error(std::string(kOneWatch) + "verify: {timeout: -5s}\n"),
            "ckptwatch.yaml:3:19: verify.timeout: '-5s' is negative; durations are 0 or more (e.g. "
            "500ms, 10s, 5m, 1h30m)");
}

TEST(Config, RejectsBadSizesWithLine) {
  EXPECT_EQ(Error(std::string(kOneWatch) + "verify: {memory_limit: 2G}\n"),
            "ckptwatch.yaml:3:24: verify.memory_limit: '2G' has an ambiguous unit; write 2GiB "
            "(powers of 1024) or 2GB (powers of 1000)");
  EXPECT_EQ(Error(std::string(kOneWatch) + "    min_free: lots\n"),
            "ckptwatch.yaml:3:15: watches[0].min_free: 'lots' is not a size or a percentage (e.g. "
            "10GiB, 5%)");
  EXPECT_EQ(Error(std::string(kOneWatch) + "    min_free: 0%\n"),
            "ckptwatch.yaml:3:15: watches[0].min_free: '0%' is out of range (more than 0%, at "
            "most 100%)");
}

TEST(Config, RejectsOutOfBoundsValues) {
  EXPECT_EQ(Error(std::string(kOneWatch) + "verify: {max_parallel: 65}\n"),
            "ckptwatch.yaml:3:24: verify.max_parallel: '65' is out of range: must be 1 to 64");
  EXPECT_EQ(Error(std::string(kOneWatch) + "verify: {max_parallel: 0}\n"),
            "ckptwatch.yaml:3:24: verify.max_parallel: '0' is out of range: must be 1 to 64");
  EXPECT_EQ(Error(std::string(kOneWatch) + "    settle: 2h\n"),
            "ckptwatch.yaml:3:13: watches[0].settle: '2h' is out of range: must be 0s to 1h");
  EXPECT_EQ(Error(std::string(kOneWatch) + "    poll_interval: 50ms\n"),
            "ckptwatch.yaml:3:20: watches[0].poll_interval: '50ms' is out of range: must be "
            "100ms to 1d");
  EXPECT_EQ(Error(std::string(kOneWatch) + "verify: {memory_limit: 1MiB}\n"),
            "ckptwatch.yaml:3:24: verify.memory_limit: '1MiB' is out of range: must be 64MiB to "
            "1TiB");
  EXPECT_EQ(Error(std::string(kOneWatch) + "verify: {queue_limit: 99999999999999999999}\n"),
            "ckptwatch.yaml:3:23: verify.queue_limit: '99999999999999999999' is out of range");
}

TEST(Config, RejectsBadEnumValuesWithSuggestion) {
  EXPECT_EQ(Error(std::string(kOneWatch) + "log: {format: jsn}\n"),
            "ckptwatch.yaml:3:15: log.format: 'jsn' is not one of text, json; did you mean "
            "'json'?");
  EXPECT_EQ(Error(std::string(kOneWatch) + "log: {level: verbose}\n"),
            "ckptwatch.yaml:3:14: log.level: 'verbose' is not one of trace, debug, info, warn, "
            "error");
  EXPECT_EQ(Error(std::string(kOneWatch) + "    backend: fanotify\n"),
            "ckptwatch.yaml:3:14: watches[0].backend: 'fanotify' is not one of auto, inotify, "
            "poll; did you mean 'inotify'?");
}

TEST(Config, AcceptsOnlyTrueAndFalseAsBooleans) {
  EXPECT_TRUE(Load(std::string(kOneWatch) + "    recursive: True\n").watches[0].recursive);
  EXPECT_EQ(Error(std::string(kOneWatch) + "    recursive: yes\n"),
            "ckptwatch.yaml:3:16: watches[0].recursive: 'yes' is not true or false");
}

TEST(Config, RejectsInvalidListenAddresses) {
  const std::pair<const char*, const char*> cases[] = {
      {"9842", "is not host:port"},
      {":9842", "has no host"},
      {"::1:9842", "put it in brackets"},
      {"[::1]", "is not [IPv6 address]:port"},
      {"[zz::1]:9842", "no valid IPv6 address"},
      {"127.0.0.1:0", "invalid port"},
      {"127.0.0.1:65536", "invalid port"},
      {"127.0.0.1:http", "invalid port"},
      {"127.0.0.1:+80", "invalid port"},
      {"256.0.0.1:9842", "invalid IPv4 address"},
      {"-bad-.example:9842", "invalid host name"},
      {"a..b:9842", "invalid host name"},
  };
  for (const auto& [listen, problem] : cases) {
    const std::string err =
        Error(std::string(kOneWatch) + "metrics: {listen: \"" + listen + "\"}\n");
    EXPECT_EQ(err.rfind("ckptwatch.yaml:3:19: metrics.listen: '" + std::string(listen) + "' ", 0),
              0u)
        << err;
    EXPECT_NE(err.find(problem), std::string::npos) << err;
  }
  for (const char* listen : {"0.0.0.0:1", "[::]:65535", "localhost:9842", "metrics.internal:80"}) {
    EXPECT_EQ(
        Load(std::string(kOneWatch) + "metrics: {listen: \"" + listen + "\"}\n").metrics.listen,
        listen);
  }
}

TEST(Config, BasicAuthNeedsBothKeys) {
  EXPECT_EQ(Error(std::string(kOneWatch) + "metrics:\n  basic_auth: {username: u}\n"),
            "ckptwatch.yaml:4:15: metrics.basic_auth: missing required key 'password_file'");
  // Null section: every child commented out means no basic auth, not an error.
  EXPECT_EQ(Load(std::string(kOneWatch) + "metrics:\n  basic_auth:\n").metrics.basic_auth_username,
            "");
}

TEST(Config, ResolvesUsersAndGroups) {
  const Config config = Load(std::string(kOneWatch) +
                             "    writer: \"0\"\n"
                             "    readers: [root, user:root, group:root, \"group:4242\"]\n");
  EXPECT_EQ(*config.watches[0].writer, (Principal{Principal::Kind::kUser, 0, "0"}));
  EXPECT_EQ(config.watches[0].readers,
            (std::vector<Principal>{{Principal::Kind::kUser, 0, "root"},
                                    {Principal::Kind::kUser, 0, "root"},
                                    {Principal::Kind::kGroup, 0, "root"},
                                    {Principal::Kind::kGroup, 4242, "4242"}}));
}

TEST(Config, RejectsUnknownUsersWithLine) {
  EXPECT_EQ(Error(std::string(kOneWatch) + "    writer: ckptwatch_no_such_user\n"),
            "ckptwatch.yaml:3:13: watches[0].writer: no user 'ckptwatch_no_such_user' on this "
            "host");
  EXPECT_EQ(Error(std::string(kOneWatch) + "    readers: [root, ckptwatch_nobody]\n"),
            "ckptwatch.yaml:3:21: watches[0].readers[1]: no user or group 'ckptwatch_nobody' on "
            "this host");
  EXPECT_EQ(Error(std::string(kOneWatch) + "    writer: group:root\n"),
            "ckptwatch.yaml:3:13: watches[0].writer: 'group:root' is a group; this key takes a "
            "user (name or uid)");
  EXPECT_NE(Error(std::string(kOneWatch) + "    writer: \"4294967295\"\n").find("not a valid id"),
            std::string::npos);
}

TEST(Config, DerivesNamesFromPaths) {
  const Config config = Load(
      "watches:\n"
      "  - path: /data/ckpt/run42\n"
      "  - path: /home/ana/llama run#7/checkpoints\n"
      "  - path: /\n"
      "  - path: /srv/checkpoints/\n"
      "  - path: /home/ana/llama-7b/checkpoints\n"
      "  - path: \"/srv/runs/exp #3\"\n");  // Unquoted, ' #3' would be a comment.
  EXPECT_EQ(config.watches[0].name, "run42");
  EXPECT_EQ(config.watches[1].name, "llama_run_7_checkpoints");
  EXPECT_EQ(config.watches[2].name, "root");
  EXPECT_EQ(config.watches[3].name, "srv_checkpoints");
  EXPECT_EQ(config.watches[3].path, "/srv/checkpoints");
  EXPECT_EQ(config.watches[4].name, "llama-7b_checkpoints");  // The examples in docs/config.md.
  EXPECT_EQ(config.watches[5].name, "exp__3");
}

TEST(Config, RejectsDuplicateNames) {
  EXPECT_EQ(Error("watches:\n"
                  "  - path: /a/run42\n"
                  "  - path: /b/run42\n"),
            "ckptwatch.yaml:3:5: watches[1].name: 'run42' (derived from path) is already the "
            "name of watches[0] at ckptwatch.yaml:2:5; names must be unique");
  EXPECT_EQ(Error("watches:\n"
                  "  - {path: /a, name: x}\n"
                  "  - {path: /b, name: x}\n"),
            "ckptwatch.yaml:3:22: watches[1].name: 'x' is already the name of watches[0] at "
            "ckptwatch.yaml:2:5; names must be unique");
}

TEST(Config, RejectsEqualWatchPaths) {
  EXPECT_EQ(Error("watches:\n"
                  "  - {path: /data/a, name: one}\n"
                  "  - {path: /data/x/../a/, name: two}\n"),
            "ckptwatch.yaml:3:12: watches[1].path: '/data/a' is also the path of watches[0] at "
            "ckptwatch.yaml:2:5");
}

TEST(Config, RejectsPathsInsideRecursiveWatches) {
  EXPECT_EQ(Error("watches:\n"
                  "  - path: /data/b/run\n"
                  "  - {path: /data, recursive: true}\n"),
            "ckptwatch.yaml:2:11: watches[0].path: '/data/b/run' is inside watches[1] ('/data', "
            "recursive, at ckptwatch.yaml:3:5); its files would be verified twice");
  // Below a non-recursive watch there is no overlap: it only sees its own directory.
  EXPECT_EQ(Load("watches:\n  - path: /data\n  - path: /data/run\n").watches.size(), 2u);
  // A recursive watch on / contains everything else.
  EXPECT_NE(Error("watches:\n  - {path: /, recursive: true}\n  - path: /x\n").find("inside"),
            std::string::npos);
}

TEST(Config, RequiresAtLeastOneWatch) {
  EXPECT_EQ(Error("watches: []\n"),
            "ckptwatch.yaml:1:10: watches: needs at least one watch (a map with a 'path')");
  EXPECT_EQ(Error("watches:\n"),
            "ckptwatch.yaml:1:1: watches: needs at least one watch (a map with a 'path')");
  EXPECT_EQ(Error("log: {level: info}\n"),
            "ckptwatch.yaml: missing required key 'watches' (the directories to watch)");
  EXPECT_EQ(Error(""), "ckptwatch.yaml: missing required key 'watches' (the directories to watch)");
  EXPECT_EQ(Error("watches:\n  - recursive: true\n"),
            "ckptwatch.yaml:2:5: watches[0]: missing required key 'path'");
}

TEST(Config, RejectsDuplicateKeys) {
  EXPECT_EQ(Error("watches:\n  - path: /a\n    settle: 1s\n    settle: 2s\n"),
            "ckptwatch.yaml:4:5: watches[0].settle: duplicate key (first at ckptwatch.yaml:3:5)");
}

TEST(Config, RejectsTildeAndNulInPaths) {
  EXPECT_EQ(Error("watches:\n  - path: ~/ckpt\n"),
            "ckptwatch.yaml:2:11: watches[0].path: '~/ckpt': '~' is not expanded; write the "
            "absolute path");
  EXPECT_EQ(Error("watches:\n  - path: \"/a\\0b\"\n"),
            "ckptwatch.yaml:2:11: watches[0].path: '/a\\x00b' contains a NUL byte");
}

TEST(Config, WatchLevelInheritsVerifyLevelUnlessSet) {
  const Config config = Load(
      "verify: {level: header}\n"
      "watches:\n"
      "  - path: /a\n"
      "  - {path: /b, level: full}\n");
  EXPECT_EQ(config.watches[0].level, Level::kHeader);
  EXPECT_EQ(config.watches[1].level, Level::kFull);
}

TEST(Config, TreatsEmptySectionsAsDefaults) {
  const Config config = Load(std::string(kOneWatch) + "log:\nmetrics:\nverify:\n");
  EXPECT_EQ(config.verify.max_parallel, 2);
}

TEST(Config, OptionalKeysMayBeNull) {
  const Config config = Load(std::string(kOneWatch) + "    expect_every: ~\n    readers:\n");
  EXPECT_FALSE(config.watches[0].expect_every);
  EXPECT_EQ(Error(std::string(kOneWatch) + "    settle:\n"),
            "ckptwatch.yaml:3:5: watches[0].settle: needs a value (a duration)");
}

TEST(Config, ReportsYamlSyntaxErrorsWithLine) {
  EXPECT_EQ(Error("watches:\n  - path: [/a\n"),
            "ckptwatch.yaml:3:1: YAML syntax: end of sequence flow not found");
  EXPECT_EQ(Error("watches:\n  - path: /a\n---\nwatches: []\n"),
            "ckptwatch.yaml:3:1: only one YAML document is allowed");
}

TEST(Config, ReportsEveryErrorInOnePassInFileOrder) {
  const std::vector<std::string> lines =
      Lines(Error("verify: {max_parallel: 0, timeout: forever}\n"
                  "watches:\n"
                  "  - path: /a\n"
                  "    settle: soon\n"
                  "log: {level: loud}\n"));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].rfind("ckptwatch.yaml:1:24: verify.max_parallel:", 0), 0u);
  EXPECT_EQ(lines[1].rfind("ckptwatch.yaml:1:36: verify.timeout:", 0), 0u);
  EXPECT_EQ(lines[2].rfind("ckptwatch.yaml:4:13: watches[0].settle:", 0), 0u);
  EXPECT_EQ(lines[3].rfind("ckptwatch.yaml:5:14: log.level:", 0), 0u);
}

TEST(Config, CapsTheReportAtTwentyErrors) {
  std::string yaml = "watches:\n";
  for (int i = 0; i < 50; ++i) yaml += "  - {path: /same}\n";
  const std::vector<std::string> lines = Lines(Error(yaml));
  ASSERT_EQ(lines.size(), 21u);
  EXPECT_EQ(lines.back(), "... and 78 more errors");  // 49 name and 49 path clashes.
}

TEST(Config, LeavesOutputAloneOnFailure) {
  Config config = Load(kOneWatch);
  const Config before = config;
  std::string err;
  EXPECT_FALSE(LoadConfigString("watches: []\n", "x.yaml", &config, &err));
  EXPECT_EQ(config, before);
}

TEST(Config, ReportsUnreadableFilesWithPathAndReason) {
  Config config;
  std::string err;
  EXPECT_FALSE(LoadConfigFile("/nonexistent/ckptwatch.yaml", &config, &err));
  EXPECT_EQ(err, "cannot read config /nonexistent/ckptwatch.yaml: No such file or directory");
  TempConfigDir dir;
  EXPECT_FALSE(LoadConfigFile(dir.path(), &config, &err));
  EXPECT_EQ(err, "cannot read config " + dir.path() + ": Is a directory");
  if (geteuid() != 0) {  // root reads anything.
    const std::string path = dir.Write("secret.yaml", kOneWatch);
    chmod(path.c_str(), 0);
    EXPECT_FALSE(LoadConfigFile(path, &config, &err));
    EXPECT_EQ(err, "cannot read config " + path + ": Permission denied");
  }
}

TEST(Config, ReportsFileErrorsWithTheFilesPath) {
  TempConfigDir dir;
  const std::string path = dir.Write("ckptwatch.yaml", "watches:\n  - path: /a\n    settle: x\n");
  Config config;
  std::string err;
  EXPECT_FALSE(LoadConfigFile(path, &config, &err));
  EXPECT_EQ(err, path +
                     ":3:13: watches[0].settle: 'x' is not a duration (e.g. 500ms, 10s, 5m, "
                     "1h30m)");
}

TEST(Config, RejectsHugeFiles) {
  TempConfigDir dir;
  const std::string path =
      dir.Write("big.yaml", std::string(kOneWatch) + std::string(2 << 20, '#'));
  Config config;
  std::string err;
  EXPECT_FALSE(LoadConfigFile(path, &config, &err));
  EXPECT_EQ(err, path + ": larger than 1MiB; is this the config file?");
}

TEST(Config, ResolvesRelativePathsAgainstTheConfigFile) {
  TempConfigDir dir;
  const std::string path =
      dir.Write("ckptwatch.yaml",
                "log: {file: logs/ckptwatch.log}\nwatches:\n  - path: runs/../checkpoints/run1/\n");
  Config config;
  std::string err;
  ASSERT_TRUE(LoadConfigFile(path, &config, &err)) << err;
  EXPECT_EQ(config.source, path);
  EXPECT_EQ(config.log.file, dir.path() + "/logs/ckptwatch.log");
  EXPECT_EQ(config.watches[0].path, dir.path() + "/checkpoints/run1");
  // Without a directory in the source name, the working directory is the base.
  ASSERT_TRUE(LoadConfigString("watches:\n  - path: c\n", "stdin", &config, &err)) << err;
  EXPECT_EQ(config.watches[0].path, (fs::current_path() / "c").string());
}

// Mutations of a valid config: whatever the bytes, the loader answers with a config or an
// error, never an exception or a crash.
TEST(Config, SurvivesMutatedInput) {
  const std::string seed = R"(log: {file: /var/log/c.log, format: json, level: debug}
metrics: {listen: "[::1]:9100", basic_auth: {username: u, password_file: /p}}
verify: {level: full, full_max_bytes: 8GiB, max_parallel: 2, timeout: 300s}
watches:
  - name: run42
    path: /data/ckpt/run42
    recursive: true
    patterns: ["*.h5", "*.keras"]
    settle: 1s
    min_free: 5%
    readers: [root]
  - path: /data/other
    expect_every: 30m
)";
  const std::string alphabet = "{}[]:,-#&*!|>'\"%@`\n \t~?0123456789abc\\";
  std::mt19937 rng(1234);
  int loaded = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text = seed;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % text.size();
      switch (rng() % 4) {
        case 0:
          text[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          // Not text.insert(at, 1, c): GCC 12 -O3 flags it with a false -Wrestrict (PR 105329).
          text = text.substr(0, at) + alphabet[rng() % alphabet.size()] + text.substr(at);
          break;
        case 2:
          text.erase(at, 1 + rng() % 8);
          break;
        default:
          text.resize(at);
          break;
      }
      if (text.empty()) text.push_back('x');  // not = "x": GCC 12 -O3 false -Wrestrict
    }
    Config config;
    std::string err;
    bool ok = false;
    ASSERT_NO_THROW(ok = LoadConfigString(text, "fuzz.yaml", &config, &err)) << text;
    if (ok) {
      ++loaded;
      EXPECT_FALSE(config.watches.empty());
    } else {
      EXPECT_FALSE(err.empty()) << text;
      EXPECT_LE(Lines(err).size(), 21u);
    }
  }
  EXPECT_GT(loaded, 0);
}

// Random documents built from the schema's own names and from hostile values, at every level.
TEST(Config, SurvivesRandomKeysAndValues) {
  const std::vector<std::string> keys = {"log",          "metrics",        "verify",
                                         "watches",      "basic_auth",     "file",
                                         "format",       "level",          "summary_every",
                                         "listen",       "username",       "password_file",
                                         "max_parallel", "timeout",        "full_max_bytes",
                                         "path",         "name",           "recursive",
                                         "patterns",     "backend",        "settle",
                                         "min_free",     "writer",         "readers",
                                         "log.file",     "watches[].name", "<<",
                                         "\"\"",         "? [1]",          "expect_every"};
  const std::vector<std::string> values = {"",
                                           "~",
                                           "[]",
                                           "{}",
                                           "-1",
                                           "99999999999999999999",
                                           "1s",
                                           "5%",
                                           "/a",
                                           "a/../..",
                                           "root",
                                           "[root]",
                                           "{path: /a}",
                                           "[{path: /x}]",
                                           "true",
                                           "\"\\0\"",
                                           "\"[::1]:1\"",
                                           "1h30m",
                                           "10GiB",
                                           "'*.h5'",
                                           "[\"*.h5\"]"};
  std::mt19937 rng(99);
  std::function<std::string(int, int)> map = [&](int depth, int indent) {
    std::string text;
    const int entries = static_cast<int>(rng() % 4);
    for (int i = 0; i < entries; ++i) {
      text += std::string(indent, ' ') + keys[rng() % keys.size()] + ":";
      switch (depth > 0 ? rng() % 3 : 0) {
        case 0:
          text += " " + values[rng() % values.size()] + "\n";
          break;
        case 1:
          text += "\n" + map(depth - 1, indent + 2);
          break;
        default:
          text += "\n" + std::string(indent + 2, ' ') + "- path: /p" + std::to_string(rng() % 3) +
                  "\n" + map(depth - 1, indent + 4);
          break;
      }
    }
    return text;
  };
  for (int i = 0; i < 3000; ++i) {
    const std::string text = map(3, 0);
    Config config;
    std::string err;
    bool ok = false;
    ASSERT_NO_THROW(ok = LoadConfigString(text, "random.yaml", &config, &err)) << text;
    EXPECT_TRUE(ok || !err.empty()) << text;
  }
}

TEST(Config, SurvivesDeepNestingAndAliases) {
  std::string err;
  Config config;
  EXPECT_FALSE(LoadConfigString(std::string(100'000, '[') + std::string(100'000, ']'), "deep",
                                &config, &err));
  EXPECT_FALSE(err.empty());
  // Aliases share nodes; a watch repeated by alias is a duplicate, reported, not a blow-up.
  EXPECT_NE(Error("watches:\n  - &w {path: /a}\n  - *w\n  - *w\n").find("also the path"),
            std::string::npos);
}

}  // namespace
}  // namespace ckptwatch
