// libFuzzer target: FindCustomClasses() (daemon/verify/keras/keras_classes.h) on arbitrary JSON.
//
// The input is parsed as JSON (not JSON: nothing to do) and searched as a model config, then
// again with itself as the training config. The result must be sorted and unique, never throw,
// and a name that comes back must be one the input contains.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "verify/keras/keras_classes.h"

namespace {

void Check(const std::vector<std::string>& classes, std::string_view input) {
  const bool sorted_unique = std::is_sorted(classes.begin(), classes.end()) &&
                             std::adjacent_find(classes.begin(), classes.end()) == classes.end();
  if (!sorted_unique) {
    std::fprintf(stderr, "keras_classes_fuzz: custom classes are not sorted and unique\n");
    std::abort();
  }
  for (const std::string& name : classes) {
    // JSON escapes aside, a reported name is text of the input.
    const bool plain = std::all_of(name.begin(), name.end(), [](char c) {
      return c != '"' && c != '\\' && c != '/' && static_cast<unsigned char>(c) >= 0x20 &&
             static_cast<unsigned char>(c) < 0x7f;
    });
    if (plain && input.find(name) == std::string_view::npos) {
      std::fprintf(stderr, "keras_classes_fuzz: reported a class the input does not name: %s\n",
                   name.c_str());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)ckptwatch::IsBuiltinKerasClass(input);
  const nlohmann::json json = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  Check(ckptwatch::FindCustomClasses(json, nullptr), input);
  Check(ckptwatch::FindCustomClasses(json, &json), input);
  return 0;
}
