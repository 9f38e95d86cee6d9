#include "verify/load_check.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
#include "verify/keras/keras_classes.h"
#include "verify/keras/keras_releases.h"
#include "verify/verifier.h"

namespace ckptwatch {
namespace {

using nlohmann::json;

LoadTarget Target(const std::string& text) {
  LoadTarget target;
  std::string err;
  EXPECT_TRUE(ParseLoadTarget(text, &target, &err)) << err;
  return target;
}

// An ok result whose Keras facts come from `config`, as the verifier child collects them.
VerifyResult KerasResult(const std::string& version, const std::string& kind, const json& config,
                         const std::string& format = "hdf5",
                         const std::string& backend = "tensorflow") {
  VerifyResult r;
  r.verdict = Verdict::kOk;
  r.format = format;
  r.keras.version = version;
  r.keras.backend = backend;
  r.keras.kind = kind;
  r.keras.custom_classes = FindCustomClasses(config, nullptr);
  CollectKerasLoadFacts(config, nullptr, &r.keras);
  return r;
}

json Layer(const std::string& class_name, json config = json::object()) {
  return {{"class_name", class_name}, {"config", std::move(config)}};
}

json Sequential(std::vector<json> layers) {
  return {{"class_name", "Sequential"}, {"config", layers}};
}

TEST(KerasReleases, EveryLineKnowsItsOwnModelClassesAndDense) {
  for (const KerasRelease& r : KerasReleases()) {
    for (std::string_view name :
         {"Sequential", "Model", "Dense", "InputLayer", "Lambda", "Conv2D"}) {
      if (r.line == KerasLine::kKeras1 && (name == "Conv2D" || name == "InputLayer")) continue;
      EXPECT_TRUE(ReleasesWithName(name) & (1u << ReleaseIndex(r))) << name << " in " << r.source;
    }
    EXPECT_GT(r.names, 150) << r.source;
  }
}

TEST(KerasReleases, Keras1OnlyClassesAndFunctionalAreWhereTheSourcesPutThem) {
  const std::uint32_t tdd = ReleasesWithName("TimeDistributedDense");
  ASSERT_NE(tdd, 0u);
  for (const KerasRelease& r : KerasReleases())
    EXPECT_EQ((tdd >> ReleaseIndex(r)) & 1, r.line == KerasLine::kKeras1 ? 1u : 0u) << r.source;
  const KerasRelease* tf215 = ReleaseFor(2, 15);
  const KerasRelease* k36 = ReleaseFor(3, 6);
  ASSERT_NE(tf215, nullptr);
  ASSERT_NE(k36, nullptr);
  EXPECT_EQ(tf215->version, "2.15.0");
  EXPECT_EQ(k36->version, "3.6.0");
  EXPECT_FALSE(ReleasesWithName("Merge") & (1u << ReleaseIndex(*tf215)));
  EXPECT_FALSE(ReleasesWithName("Merge") & (1u << ReleaseIndex(*k36)));
  EXPECT_TRUE(ReleasesWithName("Functional") & (1u << ReleaseIndex(*k36)));
  EXPECT_TRUE(ReleasesWithModule("keras.src.engine.functional") & (1u << ReleaseIndex(*tf215)));
  EXPECT_FALSE(ReleasesWithModule("keras.src.engine.functional") & (1u << ReleaseIndex(*k36)));
  EXPECT_TRUE(ReleasesWithModule("keras.src.models.functional") & (1u << ReleaseIndex(*k36)));
  EXPECT_EQ(ReleaseFor(2, 4)->version, "2.6.0");  // tf.keras 2.4/2.5: the first generated.
  EXPECT_EQ(ReleaseFor(2, 2)->line, KerasLine::kKeras2);
}

TEST(LoadTarget, ParsesAndFormats) {
  EXPECT_EQ(FormatLoadTarget(Target("keras=3.6,python=3.11")), "keras=3.6,python=3.11");
  EXPECT_EQ(FormatLoadTarget(Target("python=3.11.4,keras=2")), "keras=2.0,python=3.11");
  LoadTarget t;
  std::string err;
  for (const char* bad :
       {"", "keras", "keras=", "keras=two", "tensorflow=2.15", "keras=2.15,", "keras=2.x"})
    EXPECT_FALSE(ParseLoadTarget(bad, &t, &err)) << bad;
}

TEST(LoadCheck, Keras1TimeDistributedDenseIsIncompatibleWithKeras215AndNamed) {
  const json config =
      Sequential({Layer("TimeDistributedDense", {{"output_dim", 4}}), Layer("Activation")});
  const auto load = JudgeLoad(KerasResult("1.2.2", "full_model", config), Target("keras=2.15"));
  ASSERT_TRUE(load);
  EXPECT_EQ(load->outcome, LoadOutcome::kIncompatible);
  EXPECT_NE(load->reason.find("TimeDistributedDense (last in 1.2.2)"), std::string::npos)
      << load->reason;
  EXPECT_EQ(load->target, "keras=2.15");
  // Multi-backend Keras 2 converts Keras 1 arguments, but has no TimeDistributedDense either.
  const auto k2 = JudgeLoad(KerasResult("1.2.2", "full_model", config), Target("keras=2.3"));
  EXPECT_EQ(k2->outcome, LoadOutcome::kIncompatible);
  EXPECT_EQ(k2->reason.find("Keras 1 model config"), std::string::npos) << k2->reason;
}

TEST(LoadCheck, AKeras1ConfigIsDiagnosedWithTheArgumentsItUsesAndNoOthers) {
  // A Keras 1.2.2 model whose only layer uses output_dim: not "init, W_regularizer" too.
  const json config = Sequential({Layer("TimeDistributedDense", {{"output_dim", 4}})});
  const VerifyResult r = KerasResult("1.2.2", "full_model", config);
  EXPECT_EQ(r.keras.keras1_arguments, std::vector<std::string>{"output_dim"});
  const auto load = JudgeLoad(r, Target("keras=2.15"));
  EXPECT_NE(load->reason.find("a Keras 1 model config whose layers use output_dim: "),
            std::string::npos)
      << load->reason;
  EXPECT_EQ(load->reason.find("W_regularizer"), std::string::npos) << load->reason;
  // Convolutions only: their own Keras 1 names. Embedding's output_dim and a custom layer's
  // `init` are not Keras 1 arguments.
  const json convs =
      Sequential({Layer("Convolution2D", {{"nb_filter", 2}, {"border_mode", "valid"}}),
                  Layer("Embedding", {{"output_dim", 8}}), Layer("MyLayer", {{"init", 1}})});
  EXPECT_EQ(KerasResult("1.2.2", "full_model", convs).keras.keras1_arguments,
            (std::vector<std::string>{"border_mode", "nb_filter"}));
  // A Keras 1 config that uses none of them is not refused for them.
  const json plain = Sequential({Layer("Activation", {{"activation", "relu"}}), Layer("Flatten")});
  const auto loads = JudgeLoad(KerasResult("1.2.2", "full_model", plain), Target("keras=2.15"));
  EXPECT_EQ(loads->reason.find("Keras 1 model config"), std::string::npos) << loads->reason;
}

// The Keras 1.1.2 CNN of the shared corpus (MANIFEST.tsv: keras1.1.2_tf_cnn_sequential_full.h5),
// read by the verifier: the reason names exactly the Keras 1 arguments its model_config holds.
TEST(LoadCheckCorpus, TheKeras1CorpusModelIsDiagnosedWithItsOwnArguments) {
  const char* corpus = std::getenv("CKPTWATCH_CORPUS");
#ifdef CKPTWATCH_TEST_CORPUS
  if (corpus == nullptr) corpus = CKPTWATCH_TEST_CORPUS;
#endif
  if (corpus == nullptr) GTEST_SKIP() << "CKPTWATCH_CORPUS is not set";
  const std::string path = std::string(corpus) + "/valid/keras1.1.2_tf_cnn_sequential_full.h5";
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << path;
  VerifyOptions options;
  options.level = Level::kStructure;
  VerifyResult r = VerifyOpenFile(fd.get(), path, options);
  ASSERT_EQ(r.verdict, Verdict::kOk) << r.reason;
  // Its config's Dense, Convolution2D, Dropout and input layer arguments (h5py shows them).
  EXPECT_EQ(
      r.keras.keras1_arguments,
      (std::vector<std::string>{"W_constraint", "W_regularizer", "b_constraint", "b_regularizer",
                                "bias", "border_mode", "dim_ordering", "init", "input_dtype",
                                "nb_col", "nb_filter", "nb_row", "output_dim", "p", "subsample"}));
  const auto load = JudgeLoad(r, Target("keras=2.15"));
  ASSERT_TRUE(load);
  EXPECT_EQ(load->outcome, LoadOutcome::kIncompatible);
  EXPECT_NE(
      load->reason.find("a Keras 1 model config whose layers use W_constraint, W_regularizer, "
                        "b_constraint, b_regularizer, bias, border_mode and 9 more: "),
      std::string::npos)
      << load->reason;
}

TEST(LoadCheck, LambdaBytecodeIsFlaggedForPythonAndKeras3SafeMode) {
  const json lambda = Layer(
      "Lambda",
      {{"function", json::array({"4wEAAAAAAAAA", nullptr, nullptr})}, {"function_type", "lambda"}});
  const VerifyResult r = KerasResult("2.3.1", "full_model", Sequential({Layer("Dense"), lambda}));
  EXPECT_EQ(r.keras.lambdas, 1);
  EXPECT_EQ(r.keras.lambda_bytecode, 1);
  const auto tf = JudgeLoad(r, Target("keras=2.15,python=3.11"));
  EXPECT_EQ(tf->outcome, LoadOutcome::kLoads);
  EXPECT_NE(tf->reason.find("Python minor version"), std::string::npos) << tf->reason;
  EXPECT_NE(tf->reason.find("3.11"), std::string::npos);
  EXPECT_NE(tf->reason.find("safe_mode=False"), std::string::npos);
  const auto k3 = JudgeLoad(r, Target("keras=3.6"));
  EXPECT_EQ(k3->outcome, LoadOutcome::kIncompatible);
  EXPECT_NE(k3->reason.find("Requested the deserialization of a Lambda layer"), std::string::npos);
  // A named function is not bytecode.
  const VerifyResult named = KerasResult(
      "2.3.1", "full_model",
      Sequential({Layer("Lambda", {{"function", "my_fn"}, {"function_type", "function"}})}));
  EXPECT_EQ(named.keras.lambda_bytecode, 0);
  EXPECT_EQ(JudgeLoad(named, Target("keras=3.6"))->outcome, LoadOutcome::kLoads);
}

TEST(LoadCheck, KerasArchivesOfOneGenerationDoNotLoadInTheOther) {
  const json functional = {{"module", "keras.src.engine.functional"},
                           {"class_name", "Functional"},
                           {"config",
                            {{"layers", json::array({{{"module", "keras.layers"},
                                                      {"class_name", "Dense"},
                                                      {"config", json::object()}}})}}}};
  const VerifyResult tf = KerasResult("2.15.0", "keras3", functional, "keras_zip", "");
  EXPECT_EQ(tf.keras.modules, std::vector<std::string>{"keras.src.engine.functional"});
  const auto in3 = JudgeLoad(tf, Target("keras=3.6"));
  EXPECT_EQ(in3->outcome, LoadOutcome::kIncompatible);
  EXPECT_NE(in3->reason.find("keras.src.engine.functional cannot be imported"), std::string::npos);
  EXPECT_EQ(JudgeLoad(tf, Target("keras=2.15"))->outcome, LoadOutcome::kLoads);
  const json k3 = {
      {"module", "keras"}, {"class_name", "Sequential"}, {"config", {{"layers", json::array()}}}};
  const VerifyResult v3 = KerasResult("3.6.0", "keras3", k3, "keras_zip", "");
  EXPECT_EQ(JudgeLoad(v3, Target("keras=2.15"))->outcome, LoadOutcome::kIncompatible);
  EXPECT_EQ(JudgeLoad(v3, Target("keras=2.9"))->reason.find("cannot read a .keras archive") !=
                std::string::npos,
            true);
  EXPECT_EQ(JudgeLoad(v3, Target("keras=3.6"))->outcome, LoadOutcome::kLoads);
}

TEST(LoadCheck, PlainKeras2DenseLoadsInKeras3AndNewerMajorH5DoesNotLoadInKeras2) {
  const json dense =
      Sequential({Layer("Dense", {{"kernel_initializer", Layer("VarianceScaling")}})});
  EXPECT_EQ(JudgeLoad(KerasResult("2.3.1", "full_model", dense), Target("keras=3.6"))->outcome,
            LoadOutcome::kLoads);
  const auto old = JudgeLoad(KerasResult("3.5.0", "full_model", dense), Target("keras=2.15"));
  EXPECT_EQ(old->outcome, LoadOutcome::kIncompatible);
  EXPECT_NE(old->reason.find("newer major"), std::string::npos);
}

TEST(LoadCheck, TheanoConvolutionsAreWrongOutsideMultiBackendKeras) {
  const json conv = Sequential({Layer("Conv2D"), Layer("Dense")});
  const VerifyResult r = KerasResult("2.1.3", "full_model", conv, "hdf5", "theano");
  EXPECT_EQ(JudgeLoad(r, Target("keras=2.3"))->outcome, LoadOutcome::kLoads);
  EXPECT_EQ(JudgeLoad(r, Target("keras=2.15"))->outcome, LoadOutcome::kIncompatible);
  EXPECT_NE(JudgeLoad(r, {})->reason.find("theano backend"), std::string::npos);
}

TEST(LoadCheck, WithoutTargetOnlyCertainties) {
  const json custom = Sequential({Layer("Dense"), Layer("GarNet")});
  const auto load = JudgeLoad(KerasResult("2.2.4-tf", "full_model", custom), {});
  EXPECT_EQ(load->outcome, LoadOutcome::kNeedsCustomObjects);
  EXPECT_NE(load->reason.find("GarNet"), std::string::npos);
  EXPECT_TRUE(load->target.empty());
  VerifyResult bad = KerasResult("2.2.4", "full_model", custom);
  bad.verdict = Verdict::kTruncated;
  EXPECT_FALSE(JudgeLoad(bad, {}));
}

TEST(LoadCheck, PickleMainAndForeignClassesNeedTheirCode) {
  VerifyResult r;
  r.verdict = Verdict::kOk;
  r.format = "torch_zip";
  EXPECT_EQ(JudgeLoad(r, {})->outcome, LoadOutcome::kLoads);
  r.pickle_globals = {"__main__.Net", "omegaconf.dictconfig.DictConfig"};
  const auto load = JudgeLoad(r, Target("keras=3.6"));
  EXPECT_EQ(load->outcome, LoadOutcome::kNeedsCustomObjects);
  EXPECT_NE(load->reason.find("__main__.Net"), std::string::npos);
  EXPECT_NE(load->reason.find("weights_only=True"), std::string::npos);
  EXPECT_NE(load->reason.find("omegaconf.dictconfig.DictConfig"), std::string::npos);
}

TEST(LoadCheck, FactsSurviveJsonAndHostileNamesAreBounded) {
  VerifyResult r = KerasResult(
      "3.6.0", "keras3",
      Sequential(
          {Layer("Dense"),
           Layer("Lambda",
                 {{"function", {{"class_name", "__lambda__"}, {"config", {{"code", "x"}}}}}})}),
      "keras_zip", "");
  r.pickle_globals = {std::string(1000, 'x') + "\x01"};
  r.load = JudgeLoad(r, Target("keras=3.6"));
  VerifyResult back;
  std::string err;
  ASSERT_TRUE(FromJson(ToJson(r), &back, &err)) << err;
  EXPECT_EQ(back.keras.builtin_classes,
            (std::vector<std::string>{"Dense", "Lambda", "Sequential"}));
  EXPECT_EQ(back.keras.lambda_bytecode, 1);
  ASSERT_TRUE(back.load);
  EXPECT_EQ(back.load->outcome, LoadOutcome::kIncompatible);
  EXPECT_EQ(back.load->target, "keras=3.6");
  ASSERT_EQ(back.pickle_globals.size(), 1u);
  EXPECT_EQ(back.pickle_globals[0].size(), kMaxLoadFactBytes);
}

struct LambdaCase {
  const char* target;
  const char* format;  // "hdf5" or "keras_zip"
  const char* saved;   // keras_version in the file
  LoadOutcome outcome;
  const char* reason;  // A part of the reason.
};

// A bytecode Lambda under each Keras line, in an .h5 and in a .keras archive. Safe mode
// (Lambda.from_config refusing bytecode) came with tf.keras 2.12's tables (2.13-2.15 use them)
// for .keras archives only, and with Keras 3 for both.
const LambdaCase kLambdaCases[] = {
    {"keras=1.2", "hdf5", "1.2.2", LoadOutcome::kLoads, "Python minor version"},
    {"keras=2.3", "hdf5", "2.3.1", LoadOutcome::kLoads, "Python minor version"},
    {"keras=2.9", "hdf5", "2.9.0", LoadOutcome::kLoads, "Python minor version"},
    {"keras=2.13", "hdf5", "2.13.1", LoadOutcome::kLoads, "Python minor version"},
    {"keras=2.15", "hdf5", "2.15.0", LoadOutcome::kLoads, "Python minor version"},
    {"keras=2.16", "hdf5", "2.16.0", LoadOutcome::kLoads, "Python minor version"},
    {"keras=3.6", "hdf5", "2.15.0", LoadOutcome::kIncompatible,
     "Keras 3.6 refuses it unless load_model(..., safe_mode=False)"},
    {"keras=2.9", "keras_zip", "2.15.0", LoadOutcome::kIncompatible,
     "cannot read a .keras archive"},
    {"keras=2.12", "keras_zip", "2.12.0", LoadOutcome::kIncompatible,
     "Keras 2.12 refuses it unless load_model(..., safe_mode=False)"},
    {"keras=2.13", "keras_zip", "2.13.1", LoadOutcome::kIncompatible,
     "Keras 2.13 refuses it unless load_model(..., safe_mode=False)"},
    {"keras=2.15", "keras_zip", "2.15.0", LoadOutcome::kIncompatible,
     "Keras 2.15 refuses it unless load_model(..., safe_mode=False)"},
    {"keras=2.16", "keras_zip", "2.16.0", LoadOutcome::kIncompatible,
     "Keras 2.16 refuses it unless load_model(..., safe_mode=False)"},
    {"keras=3.6", "keras_zip", "3.6.0", LoadOutcome::kIncompatible,
     "Keras 3.6 refuses it unless load_model(..., safe_mode=False)"},
};

// The model each format stores a Lambda in: Keras 1/2 configs keep the marshalled function as
// a [code, defaults, closure] list with function_type "lambda"; .keras a "__lambda__" object.
VerifyResult LambdaModel(const std::string& format, const std::string& saved, bool bytecode) {
  const bool archive = format == "keras_zip";
  json function =
      bytecode ? (archive ? json{{"class_name", "__lambda__"}, {"config", {{"code", "4wEA"}}}}
                          : json::array({"4wEAAAAAAAAA", nullptr, nullptr}))
               : json("my_fn");
  json config = {{"function", function}};
  if (!archive) config["function_type"] = bytecode ? "lambda" : "function";
  json layer = Layer("Lambda", config), dense = Layer("Dense");
  if (archive) layer["module"] = dense["module"] = "keras.layers";
  json model = Sequential({dense, layer});
  if (archive) model["module"] = "keras";
  return KerasResult(saved, archive ? "keras3" : "full_model", model, format,
                     archive ? "" : "tensorflow");
}

TEST(LoadCheck, ABytecodeLambdaUnderEachKerasLineAndFormat) {
  for (const LambdaCase& c : kLambdaCases) {
    const VerifyResult r = LambdaModel(c.format, c.saved, true);
    ASSERT_EQ(r.keras.lambda_bytecode, 1) << c.format;
    const auto load = JudgeLoad(r, Target(c.target));
    ASSERT_TRUE(load);
    EXPECT_EQ(LoadOutcomeName(load->outcome), LoadOutcomeName(c.outcome))
        << c.target << " " << c.format << ": " << load->reason;
    // Only a release with safe mode, for its format, is named as refusing the bytecode.
    const bool refuses = std::string(c.reason).find("refuses it unless") != std::string::npos;
    EXPECT_EQ(load->reason.find("refuses it unless load_model") != std::string::npos, refuses)
        << c.target << " " << c.format << ": " << load->reason;
    EXPECT_NE(load->reason.find(c.reason), std::string::npos)
        << c.target << " " << c.format << ": " << load->reason;
    // The same model with a named function instead of bytecode: only generation rules remain.
    const VerifyResult named = LambdaModel(c.format, c.saved, false);
    EXPECT_EQ(named.keras.lambda_bytecode, 0);
    const auto named_load = JudgeLoad(named, Target(c.target));
    EXPECT_EQ(named_load->reason.find("refuses it unless"), std::string::npos)
        << named_load->reason;
    if (std::string(c.reason) != "cannot read a .keras archive") {
      EXPECT_EQ(named_load->outcome, LoadOutcome::kLoads)
          << c.target << " " << c.format << ": " << named_load->reason;
    }
  }
}

}  // namespace
}  // namespace ckptwatch
