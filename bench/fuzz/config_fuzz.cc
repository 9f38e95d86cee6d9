// libFuzzer target: the config loader (daemon/config/config.h) on arbitrary YAML.
//
// LoadConfigString() must fail with a message or load. A loaded config must survive the round
// trip `check-config` promises: DescribeEffectiveConfig() loads back to an equal Config, whose
// description is the same text, and a reload between the two would change nothing that needs a
// restart.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/config.h"

namespace {

// Relative paths resolve against the working directory; no '/' keeps both loads alike.
const std::string kSource = "fuzz.yaml";

[[noreturn]] void Fail(const char* what, std::string_view input, const std::string& detail) {
  std::fprintf(stderr, "config_fuzz: %s\n--- input ---\n%.*s\n--- detail ---\n%s\n", what,
               static_cast<int>(input.size()), input.data(), detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  ckptwatch::Config config;
  std::string err;
  if (!ckptwatch::LoadConfigString(yaml, kSource, &config, &err)) {
    if (err.empty()) Fail("the load failed without a message", yaml, "");
    return 0;
  }

  const std::string described = ckptwatch::DescribeEffectiveConfig(config);
  ckptwatch::Config reloaded;
  if (!ckptwatch::LoadConfigString(described, kSource, &reloaded, &err)) {
    Fail("DescribeEffectiveConfig() does not load", yaml, described + "--- error ---\n" + err);
  }
  if (!(reloaded == config)) {
    Fail("DescribeEffectiveConfig() loads to a different Config", yaml,
         described + "--- reloaded ---\n" + ckptwatch::DescribeEffectiveConfig(reloaded));
  }
  if (const std::string again = ckptwatch::DescribeEffectiveConfig(reloaded); again != described) {
    Fail("the description is not a fixed point", yaml, described + "--- then ---\n" + again);
  }
  if (const ckptwatch::ReloadPlan plan = ckptwatch::PlanReload(config, reloaded);
      !plan.blockers.empty() || !plan.restart_watches.empty()) {
    Fail("equal configs need more than a live reload", yaml, described);
  }
  return 0;
}
