#include "verify/load_check.h"

#include <algorithm>
#include <charconv>
#include <exception>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "verify/keras/keras_classes.h"
#include "verify/keras/keras_releases.h"

namespace ckptwatch {
namespace {

using Json = nlohmann::json;

std::string_view StringOf(const Json& object, std::string_view key) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return {};
  return it->get_ref<const std::string&>();
}

bool IsDottedIdentifier(std::string_view s) {
  if (s.empty() || s.size() > kMaxLoadFactBytes) return false;
  return std::ranges::all_of(s, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.';
  });
}

// A module path inside one Keras installation's sources (keras.src.engine.functional; tf.keras
// 2.12's keras.engine.*), as opposed to a public API module ("keras.layers",
// "keras.optimizers.schedules") that every release that reads .keras archives resolves.
bool IsInternalKerasModule(std::string_view module) {
  return module.starts_with("keras.src.") || module.starts_with("tf_keras.src.") ||
         module.starts_with("keras.engine.");
}

// How a Lambda layer's config stores its function: Keras 1 and 2 write function_type "lambda"
// with the marshalled code (a string, or [code, defaults, closure]); Keras 3 and tf.keras 2.13+
// .keras write {"class_name": "__lambda__", "config": {"code": ...}}.
bool HoldsBytecode(const Json& layer_config) {
  const auto function = layer_config.find("function");
  if (function == layer_config.end()) return false;
  if (function->is_object()) return StringOf(*function, "class_name") == "__lambda__";
  return StringOf(layer_config, "function_type") == "lambda" &&
         (function->is_string() || function->is_array());
}

// Layer arguments of Keras 1 that Keras 2 renamed, from the conversions of Keras 2.0-2.3's
// keras/legacy/interfaces.py (Dense, Conv*, pooling, recurrent, BatchNormalization, Dropout,
// GaussianNoise, InputLayer); sorted. A target without those conversions fails on each with
// "Keyword argument not understood". Only looked for in built-in classes' configs, so a custom
// layer's own `p` or `init` is not one.
constexpr std::string_view kKeras1Arguments[] = {
    "U_constraint", "U_regularizer", "W_constraint",     "W_regularizer", "atrous_rate",
    "b_constraint", "b_regularizer", "beta_init",        "bias",          "border_mode",
    "consume_less", "dim_ordering",  "dropout_U",        "dropout_W",     "forget_bias_init",
    "gamma_init",   "init",          "inner_activation", "inner_init",    "input_dtype",
    "nb_col",       "nb_filter",     "nb_row",           "output_dim",    "p",
    "pool_length",  "sigma",         "subsample"};
static_assert(std::ranges::is_sorted(kKeras1Arguments), "binary_search needs it sorted");

bool IsKeras1Argument(std::string_view class_name, std::string_view key) {
  // Keras 2's Embedding still takes output_dim.
  if (key == "output_dim" && class_name == "Embedding") return false;
  return std::ranges::binary_search(kKeras1Arguments, key);
}

// The Keras 1 arguments a reason names: those in the file, at most six and a count.
std::string Keras1ArgumentList(const std::vector<std::string>& names) {
  std::string text;
  for (std::size_t i = 0; i < names.size() && i < 6; ++i) text += (i ? ", " : "") + names[i];
  if (names.size() > 6) text += " and " + std::to_string(names.size() - 6) + " more";
  return text;
}

// A custom class name in a reason: what a file chose, so printable ASCII only.
std::string Printable(std::string_view name) {
  std::string text(name.substr(0, kMaxLoadFactBytes));
  for (char& c : text) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return text;
}

// Appends rather than "'" + text: GCC 12 warns (-Wrestrict, a known false positive) on that.
std::string Quoted(std::string_view text) {
  std::string quoted = "'";
  quoted.append(Printable(text)).append("'");
  return quoted;
}

std::string VersionText(const std::pair<int, int>& v) {
  return std::to_string(v.first) + "." + std::to_string(v.second);
}

struct Version {
  int major = 0, minor = 0;
};

std::optional<Version> ParseKerasVersion(std::string_view text) {
  std::pair<int, int> v;
  std::string ignored;
  // "2.2.4-tf", "3.14.1": the numbers before any suffix.
  const std::size_t end = text.find_first_not_of("0123456789.");
  if (!ParseVersion(text.substr(0, end), &v, &ignored)) return std::nullopt;
  return Version{v.first, v.second};
}

std::string Join(const std::vector<std::string>& items, std::size_t max) {
  std::string text;
  for (std::size_t i = 0; i < items.size() && i < max; ++i) text += (i ? ", " : "") + items[i];
  if (items.size() > max) text += " and " + std::to_string(items.size() - max) + " more";
  return text;
}

// Where a name's presence changes around `target`: "removed by 2.0.0", "added in 3.9.0".
std::string WhenChanged(std::uint32_t mask, int target) {
  const auto releases = KerasReleases();
  for (int i = target + 1; i < static_cast<int>(releases.size()); ++i) {
    if (mask & (1u << i)) return "added in " + std::string(releases[i].version);
  }
  for (int i = target - 1; i >= 0; --i) {
    if (mask & (1u << i)) return "last in " + std::string(releases[i].version);
  }
  return "";
}

struct Judge {
  LoadOutcome outcome = LoadOutcome::kLoads;
  std::vector<std::string> reasons;
  void Add(LoadOutcome o, std::string reason) {
    outcome = std::max(outcome, o);
    reasons.push_back(std::move(reason));
  }
};

bool IsConvolution(const std::string& name) {
  return name.find("Conv") != std::string::npos || name.find("Deconv") != std::string::npos;
}

void JudgeKeras(const VerifyResult& r, const LoadTarget& target, Judge* judge) {
  const KerasInfo& k = r.keras;
  const std::optional<Version> saved = ParseKerasVersion(k.version);
  const KerasRelease* release =
      target.keras ? ReleaseFor(target.keras->first, target.keras->second) : nullptr;
  const std::string keras_target = target.keras ? "Keras " + std::to_string(target.keras->first) +
                                                      "." + std::to_string(target.keras->second)
                                                : "";
  const bool archive = r.format == "keras_zip";

  if (!k.custom_classes.empty())
    judge->Add(LoadOutcome::kNeedsCustomObjects,
               "load_model needs custom_objects (or the package that registers them) for: " +
                   Join(
                       [&] {
                         std::vector<std::string> names;
                         for (const std::string& c : k.custom_classes)
                           names.push_back(Printable(c));
                         return names;
                       }(),
                       5));

  if (k.lambda_bytecode > 0) {
    std::string text =
        std::to_string(k.lambda_bytecode) +
        (k.lambda_bytecode == 1 ? " Lambda layer holds" : " Lambda layers hold") +
        " marshalled Python bytecode: it loads only on the Python minor version that "
        "saved it (not recorded in the file; another gives 'bad marshal data' or a crash)";
    if (target.python)
      text += ", so the target Python " + std::to_string(target.python->first) + "." +
              std::to_string(target.python->second) + " must be that version";
    const bool refuses = release != nullptr && release->Has(KerasRelease::kLambdaSafeMode) &&
                         (release->line == KerasLine::kKeras3 || archive);
    text += refuses ? "; " + keras_target +
                          " refuses it unless load_model(..., safe_mode=False): 'Requested the "
                          "deserialization of a Lambda layer'"
                    : "; Keras 3 (and tf.keras 2.13+ for .keras) refuses it unless safe_mode=False";
    judge->Add(refuses ? LoadOutcome::kIncompatible : LoadOutcome::kLoads, text);
  }

  const bool other_backend = k.backend == "theano" || k.backend == "cntk";
  if (other_backend && release == nullptr)
    judge->Add(LoadOutcome::kLoads,
               "saved with the " + k.backend +
                   " backend: only Keras 2.0-2.3 convert its convolution kernels on load");
  if (release == nullptr) return;

  const int index = ReleaseIndex(*release);
  const std::string as = keras_target + " (tables of " + std::string(release->version) + ")";
  if (saved && !archive && saved->major > target.keras->first)
    judge->Add(LoadOutcome::kIncompatible,
               "saved by Keras " + std::to_string(saved->major) + "." +
                   std::to_string(saved->minor) + ", a newer major than the target " +
                   keras_target + ": an older Keras does not know the newer config format");
  // Named from the file: a Keras 1 config whose layers use none of the renamed arguments is
  // not refused for them.
  if (saved && saved->major == 1 && release->line != KerasLine::kKeras1 &&
      !release->Has(KerasRelease::kConvertsKeras1Configs) && k.kind == "full_model" &&
      !k.keras1_arguments.empty())
    judge->Add(LoadOutcome::kIncompatible,
               "a Keras 1 model config whose layers use " + Keras1ArgumentList(k.keras1_arguments) +
                   ": " + keras_target +
                   " has no legacy interfaces to convert Keras 1 arguments ('Keyword argument not "
                   "understood')");
  if (archive) {
    const bool saved_by_3 = saved && saved->major >= 3;
    const bool target_3 = release->line == KerasLine::kKeras3;
    std::string foreign_module;
    for (const std::string& m : k.modules) {
      const std::uint32_t mask = ReleasesWithModule(m);
      // A module no generated release has is not judged: the tables may lack it.
      if (mask != 0 && (mask & (1u << index)) == 0) {
        foreign_module = m;
        break;
      }
    }
    if (!release->Has(KerasRelease::kReadsKerasArchive))
      judge->Add(LoadOutcome::kIncompatible,
                 keras_target +
                     " cannot read a .keras archive: its load_model expects HDF5 or a SavedModel");
    else if (!foreign_module.empty())
      judge->Add(LoadOutcome::kIncompatible,
                 "config.json names module " + foreign_module + ", which " + as +
                     " does not have: 'Could not deserialize class ... because its parent module " +
                     foreign_module + " cannot be imported' (keras-team/keras#19089)");
    else if (saved && saved_by_3 != target_3)
      judge->Add(LoadOutcome::kIncompatible,
                 "a .keras archive written by Keras " + std::to_string(saved->major) + "." +
                     std::to_string(saved->minor) + " and a target of the other generation (" +
                     keras_target +
                     "): the two saving formats differ in config layout and weight paths");
  }
  std::vector<std::string> missing;
  for (const std::string& name : k.builtin_classes) {
    const std::uint32_t mask = ReleasesWithName(name);
    if (mask == 0 || (mask & (1u << index)) != 0) continue;
    const std::string when = WhenChanged(mask, index);
    missing.push_back(name + (when.empty() ? "" : " (" + when + ")"));
  }
  if (!missing.empty())
    judge->Add(LoadOutcome::kIncompatible,
               as + " has no " + Join(missing, 8) + ": 'Unknown layer'");
  if (other_backend &&
      (release->line == KerasLine::kTfKeras || release->line == KerasLine::kKeras3) &&
      !release->Has(KerasRelease::kConvertsTheanoKernels)) {
    const bool convolutions = std::ranges::any_of(k.builtin_classes, IsConvolution);
    judge->Add(
        convolutions ? LoadOutcome::kIncompatible : LoadOutcome::kLoads,
        "saved with the " + k.backend + " backend: " + as +
            " does not convert its convolution kernels on load" +
            (convolutions ? ", so the convolutions compute wrong outputs without any error" : ""));
  }
}

void JudgePickle(const VerifyResult& r, Judge* judge) {
  std::vector<std::string> main, other;
  for (const std::string& g : r.pickle_globals)
    (g.starts_with("__main__.") ? main : other).push_back(g);
  if (!main.empty())
    judge->Add(
        LoadOutcome::kNeedsCustomObjects,
        "the pickle references " + Join(main, 5) +
            ": only a script that defines it loads this file ('Can't get attribute ... on <module "
            "'__main__'>'), and torch.load(weights_only=True) refuses it ('Unsupported global')");
  if (!other.empty())
    judge->Add(
        LoadOutcome::kNeedsCustomObjects,
        "the pickle imports " + Join(other, 5) +
            ": the loading environment needs those modules, and torch.load(weights_only=True) "
            "refuses them unless allowed with torch.serialization.add_safe_globals");
}

}  // namespace

bool ParseVersion(std::string_view text, std::pair<int, int>* out, std::string* err) {
  int parts[3] = {0, 0, 0};
  int count = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  while (count < 3) {
    const auto [next, ec] = std::from_chars(p, end, parts[count]);
    if (ec != std::errc() || parts[count] < 0 || parts[count] > 999) break;
    ++count;
    p = next;
    if (p == end || *p != '.') break;
    ++p;
  }
  if (count == 0 || p != end) {
    *err = Quoted(text) + " is not a version: write major.minor, e.g. 2.15 or 3.11";
    return false;
  }
  *out = {parts[0], parts[1]};
  return true;
}

bool ParseLoadTarget(std::string_view text, LoadTarget* out, std::string* err) {
  LoadTarget target;
  bool more = !text.empty();
  while (more) {
    const std::size_t comma = text.find(',');
    const std::string_view part = text.substr(0, comma);
    more = comma != std::string_view::npos;
    text = more ? text.substr(comma + 1) : std::string_view();
    const std::size_t eq = part.find('=');
    const std::string_view key = part.substr(0, eq);
    std::optional<std::pair<int, int>>* slot = key == "keras"    ? &target.keras
                                               : key == "python" ? &target.python
                                                                 : nullptr;
    if (eq == std::string_view::npos || slot == nullptr) {
      *err = Quoted(part) + ": write keras=VERSION and/or python=VERSION, comma-separated";
      return false;
    }
    std::pair<int, int> v;
    if (!ParseVersion(part.substr(eq + 1), &v, err)) return false;
    *slot = v;
  }
  if (target.empty()) {
    *err = "an empty load target: write keras=VERSION and/or python=VERSION";
    return false;
  }
  *out = target;
  return true;
}

std::string FormatLoadTarget(const LoadTarget& target) {
  std::string text;
  auto add = [&](std::string_view key, const std::optional<std::pair<int, int>>& v) {
    if (!v) return;
    if (!text.empty()) text += ',';
    text.append(key).append("=").append(VersionText(*v));
  };
  add("keras", target.keras);
  add("python", target.python);
  return text;
}

void CollectKerasLoadFacts(const nlohmann::json& model_config,
                           const nlohmann::json* training_config, KerasInfo* keras) {
  std::set<std::string> classes, modules, keras1_arguments;
  const std::set<std::string> custom(keras->custom_classes.begin(), keras->custom_classes.end());
  try {
    ForEachKerasObject(model_config, training_config, [&](const Json& object) {
      const std::string_view name = StringOf(object, "class_name");
      const auto config = object.find("config");
      if (name.empty() || config == object.end()) return;
      if (classes.size() < kMaxLoadFacts && ReleasesWithName(name) != 0 &&
          !custom.count(std::string(name)))
        classes.emplace(name);
      const std::string_view module = StringOf(object, "module");
      if (modules.size() < kMaxLoadFacts && IsDottedIdentifier(module) &&
          IsInternalKerasModule(module))
        modules.emplace(module);
      if (config->is_object() && ReleasesWithName(name) != 0 && !custom.count(std::string(name)))
        for (const auto& [key, value] : config->items())
          if (keras1_arguments.size() < kMaxLoadFacts && IsKeras1Argument(name, key))
            keras1_arguments.insert(key);
      if (name == "Lambda" && config->is_object()) {
        ++keras->lambdas;
        if (HoldsBytecode(*config)) ++keras->lambda_bytecode;
      }
    });
  } catch (const std::exception&) {
    // Only allocation can fail here; keep what was found.
  }
  keras->builtin_classes.assign(classes.begin(), classes.end());
  keras->modules.assign(modules.begin(), modules.end());
  keras->keras1_arguments.assign(keras1_arguments.begin(), keras1_arguments.end());
}

std::optional<LoadJudgement> JudgeLoad(const VerifyResult& result, const LoadTarget& target) {
  if (!result.ok()) return std::nullopt;
  Judge judge;
  if (!result.keras.kind.empty()) JudgeKeras(result, target, &judge);
  JudgePickle(result, &judge);
  std::string reason;
  for (const std::string& r : judge.reasons) reason += (reason.empty() ? "" : "; ") + r;
  LoadJudgement out{judge.outcome, FormatLoadTarget(target), std::move(reason)};
  if (out.reason.size() > kMaxLoadReasonBytes) out.reason.resize(kMaxLoadReasonBytes);
  return out;
}

}  // namespace ckptwatch
