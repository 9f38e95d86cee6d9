#include "verify/keras/keras_classes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ckptwatch {
namespace {

using nlohmann::json;
using Names = std::vector<std::string>;

Names Find(const char* model_config, const char* training_config = nullptr) {
  const json model = json::parse(model_config);
  if (training_config == nullptr) return FindCustomClasses(model, nullptr);
  const json training = json::parse(training_config);
  return FindCustomClasses(model, &training);
}

TEST(BuiltinKerasGroups, EachTableIsSortedAndUnique) {
  ASSERT_FALSE(BuiltinKerasGroups().empty());
  for (const BuiltinKerasGroup& group : BuiltinKerasGroups()) {
    ASSERT_FALSE(group.names.empty()) << group.source;
    EXPECT_TRUE(std::ranges::adjacent_find(group.names, std::ranges::greater_equal{}) ==
                group.names.end())
        << group.source << " is not strictly sorted";
  }
}

TEST(IsBuiltinKerasClass, KnowsNamesFromEveryKerasGeneration) {
  for (const char* name :
       {// Keras 1
        "Convolution2D", "MaxPooling2D", "Merge", "Highway", "MaxoutDense", "TimeDistributedDense",
        "AtrousConvolution2D", "SReLU", "Container",
        // Keras 2 and tf.keras
        "Conv2D", "BatchNormalization", "BatchNormalizationV1", "TensorFlowOpLayer", "TFOpLambda",
        "SlicingOpLambda", "DenseFeatures", "CuDNNLSTM", "Functional", "Model", "Sequential",
        "VarianceScaling", "GlorotUniformV2", "L1L2", "MaxNorm", "RMSprop", "adam",
        "ExponentialDecay", "MeanMetricWrapper", "BinaryCrossentropy", "Policy",
        // Keras 3
        "InputLayer", "RandAugment", "RMSNormalization", "DTypePolicy", "FloatDTypePolicy",
        "QuantizedDTypePolicy", "LecunUniform", "OrthogonalRegularizer", "Lion",
        // Serialization markers
        "__tuple__", "__keras_tensor__", "__numpy__", "__typespec__", "__lambda__", "function"}) {
    EXPECT_TRUE(IsBuiltinKerasClass(name)) << name;
  }
}

TEST(IsBuiltinKerasClass, AcceptsTfKeras211UnpackagedOptimizers) {
  EXPECT_TRUE(IsBuiltinKerasClass("Custom>Adam"));
  EXPECT_TRUE(IsBuiltinKerasClass("Custom>AdamW"));
  EXPECT_FALSE(IsBuiltinKerasClass("Custom>Dense"));
  EXPECT_FALSE(IsBuiltinKerasClass("Custom>GarNet"));
}

TEST(IsBuiltinKerasClass, RejectsThirdPartyAndNearMisses) {
  for (const char* name : {"KerasLayer", "GarNet", "QDense", "quantized_bits", "dense", "DENSE",
                           "Dense ", "", "keras>Dense"}) {
    EXPECT_FALSE(IsBuiltinKerasClass(name)) << '"' << name << '"';
  }
}

TEST(FindCustomClasses, Keras1SequentialOfBuiltinsHasNone) {
  EXPECT_EQ(Find(R"({"class_name": "Sequential", "config": [
      {"class_name": "Convolution2D", "config": {"name": "convolution2d_1", "init": "glorot_uniform",
        "W_regularizer": {"name": "WeightRegularizer", "l2": 0.01}, "activation": "linear"}},
      {"class_name": "Merge", "config": {"name": "merge_1", "mode": "concat", "layers": [
        {"class_name": "Sequential", "config": [{"class_name": "Dense", "config": {"name": "d"}}]},
        {"class_name": "Sequential", "config": [{"class_name": "Highway", "config": {"name": "h"}}]}]}},
      {"class_name": "TimeDistributedDense", "config": {"name": "tdd"}}]})",
                 R"({"optimizer_config": {"class_name": "Adadelta", "config": {"lr": 1.0}},
                     "loss": "categorical_crossentropy", "metrics": ["accuracy"]})"),
            Names{});
}

TEST(FindCustomClasses, Keras1CustomLayerIsFound) {
  EXPECT_EQ(Find(R"({"class_name": "Sequential", "config": [
      {"class_name": "Dense", "config": {"name": "dense_1"}},
      {"class_name": "AttentionWithContext", "config": {"name": "att"}}]})"),
            Names{"AttentionWithContext"});
}

TEST(FindCustomClasses, LayerNamesAndInboundNodesAreNotClasses) {
  // tf.keras 2.2.4-tf, as GarNet's checkpoint: the custom layer is named after a built-in and a
  // built-in is named after a custom class; inbound nodes carry layer names and call kwargs.
  EXPECT_EQ(Find(R"({"class_name": "Model", "config": {"name": "model", "layers": [
      {"name": "input_1", "class_name": "InputLayer", "config": {"name": "input_1"},
       "inbound_nodes": []},
      {"name": "dense", "class_name": "GarNet", "config": {"name": "dense", "n_aggregators": 4},
       "inbound_nodes": [[["input_1", 0, 0, {"mask": {"class_name": "Bogus", "config": {}}}]]]},
      {"name": "GarNet", "class_name": "Dense", "config": {"name": "GarNet", "units": 1,
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}}},
       "inbound_nodes": [[["dense", 0, 0, {}]]]}],
      "input_layers": [["input_1", 0, 0]], "output_layers": [["GarNet", 0, 0]]}})"),
            Names{"GarNet"});
}

TEST(FindCustomClasses, WalksNestedWrappers) {
  EXPECT_EQ(Find(R"({"class_name": "Sequential", "config": {"layers": [
      {"class_name": "Bidirectional", "config": {"merge_mode": "concat",
        "layer": {"class_name": "TimeDistributed", "config": {
          "layer": {"class_name": "PhasedLSTM", "config": {"units": 8}}}},
        "backward_layer": {"class_name": "LSTM", "config": {"go_backwards": true}}}}]}})"),
            Names{"PhasedLSTM"});
}

TEST(FindCustomClasses, WalksSubModels) {
  // Teachable Machine style: a Sequential holding a Functional trunk holding a Sequential head.
  EXPECT_EQ(Find(R"({"class_name": "Sequential", "config": {"name": "outer", "layers": [
      {"class_name": "Functional", "config": {"name": "trunk", "layers": [
        {"class_name": "Conv2D", "config": {"name": "c"}, "inbound_nodes": []},
        {"class_name": "Sequential", "config": {"name": "head", "layers": [
          {"class_name": "FixedDropout", "config": {"rate": 0.2}}]}, "inbound_nodes": []}]}},
      {"class_name": "Dense", "config": {"name": "out"}}]}})"),
            Names{"FixedDropout"});
}

TEST(FindCustomClasses, FindsCustomInitializerRegularizerConstraintAndActivation) {
  EXPECT_EQ(Find(R"({"class_name": "Sequential", "config": {"layers": [
      {"class_name": "Dense", "config": {"name": "d",
        "kernel_initializer": {"class_name": "GridInitializer", "config": {}},
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": {"class_name": "SparsityRegularizer", "config": {"rho": 0.05}},
        "bias_regularizer": {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.01}},
        "kernel_constraint": {"class_name": "ClipConstraint", "config": {}},
        "bias_constraint": {"class_name": "NonNeg", "config": {}},
        "activation": {"class_name": "Snake", "config": {"alpha": 1.0}}}},
      {"class_name": "Activation", "config": {"activation": {"class_name": "LeakyReLU",
        "config": {"alpha": 0.3}}}}]}})"),
            (Names{"ClipConstraint", "GridInitializer", "Snake", "SparsityRegularizer"}));
}

TEST(FindCustomClasses, SearchesOnlyCompileEntriesOfTrainingConfig) {
  EXPECT_EQ(Find(R"({"class_name": "Sequential", "config": {"layers": []}})",
                 R"({"optimizer_config": {"class_name": "RAdam", "config": {
                       "learning_rate": {"class_name": "WarmUp", "config": {"warmup_steps": 10}}}},
                     "loss": {"class_name": "FocalLoss", "config": {"gamma": 2.0}},
                     "metrics": [[{"class_name": "MeanMetricWrapper",
                                   "config": {"name": "f1", "fn": "f1_metric"}}]],
                     "weighted_metrics": [{"class_name": "WeightedKappa", "config": {}}],
                     "sample_weight_mode": {"class_name": "NotCompiled", "config": {}}})"),
            (Names{"FocalLoss", "RAdam", "WarmUp", "WeightedKappa"}));
}

TEST(FindCustomClasses, BuiltinTrainingConfigsHaveNone) {
  // tf.keras 2.11-2.15 HDF5: the new optimizers are written as "Custom>Adam".
  EXPECT_EQ(Find(R"({"class_name": "Sequential", "config": {"layers": []}})",
                 R"({"optimizer_config": {"class_name": "Custom>Adam", "config": {
                       "learning_rate": {"class_name": "ExponentialDecay", "config": {}}}},
                     "loss": {"class_name": "BinaryCrossentropy", "config": {}},
                     "metrics": [[{"class_name": "MeanMetricWrapper",
                                   "config": {"fn": "binary_accuracy"}}]]})"),
            Names{});
  const json model = json::parse(R"({"class_name": "Sequential", "config": {"layers": []}})");
  const json not_an_object = json::parse(R"([{"class_name": "Odd", "config": {}}])");
  EXPECT_EQ(FindCustomClasses(model, &not_an_object), Names{});
}

TEST(FindCustomClasses, ModuleOutsideKerasMarksCustomEvenForBuiltinName) {
  EXPECT_EQ(Find(R"({"module": "keras", "class_name": "Sequential", "config": {"layers": [
      {"module": "my_project.layers", "class_name": "Dense", "config": {},
       "registered_name": "my_project>Dense"},
      {"module": "keras_hub.src.models.gemma", "class_name": "GemmaBackbone", "config": {},
       "registered_name": "keras_hub>GemmaBackbone"}]}})"),
            (Names{"Dense", "GemmaBackbone"}));
}

TEST(FindCustomClasses, KerasModulesAreBuiltinEvenWhenNameIsUnknown) {
  // A layer newer than this table, and non-exported internals that keep their source module.
  EXPECT_EQ(Find(R"({"module": "keras", "class_name": "Sequential", "config": {"layers": [
      {"module": "keras.layers", "class_name": "LayerFromKeras99", "config": {}},
      {"module": "keras.src.trainers.compile_utils", "class_name": "MetricsList", "config": {},
       "registered_name": "MetricsList"},
      {"module": "tf_keras.src.layers.core.tf_op_layer", "class_name": "TFOpLambda",
       "config": {}, "registered_name": "TFOpLambda"},
      {"module": "kerasformers.layers", "class_name": "NotKeras", "config": {}}]}})"),
            Names{"NotKeras"});
}

TEST(FindCustomClasses, RegisteredNameWithForeignPackageIsCustom) {
  EXPECT_EQ(Find(R"({"class_name": "Sequential", "config": {"layers": [
      {"class_name": "Foo", "config": {}, "registered_name": "Custom>Foo"},
      {"class_name": "Dense", "config": {}, "registered_name": "mypkg>Dense"},
      {"class_name": "Conv2D", "config": {}, "registered_name": null}]}})"),
            (Names{"Dense", "Foo"}));
  // Legacy tf.keras writes the registered name as the class_name itself.
  EXPECT_EQ(Find(R"({"class_name": "Custom>GarNet", "config": {}})"), Names{"Custom>GarNet"});
}

TEST(FindCustomClasses, NullModuleWithRegisteredNameIsACustomMainClass) {
  EXPECT_EQ(Find(R"({"module": null, "class_name": "MyBlock", "config": {},
                     "registered_name": "MyBlock"})"),
            Names{"MyBlock"});
  EXPECT_EQ(
      Find(R"({"module": null, "class_name": "Dense", "config": {}, "registered_name": null})"),
      Names{});
}

TEST(FindCustomClasses, ReportsSerializedFunctionsByTheirName) {
  EXPECT_EQ(Find(R"([
      {"module": "my_losses", "class_name": "function", "config": "focal_loss",
       "registered_name": "focal_loss"},
      {"module": null, "class_name": "function", "config": "main_act", "registered_name": "main_act"},
      {"module": "builtins", "class_name": "function", "config": "unknown_fn",
       "registered_name": "function"},
      {"module": "builtins", "class_name": "function", "config": "relu",
       "registered_name": "function"},
      {"module": "keras.losses", "class_name": "function", "config": "mean_squared_error",
       "registered_name": "mean_squared_error"},
      {"class_name": "function", "config": "sigmoid"},
      {"class_name": "function", "config": null}])"),
            (Names{"focal_loss", "main_act", "unknown_fn"}));
}

TEST(FindCustomClasses, TensorflowModuleNeedsCustomObjects) {
  // Keras >= 3.9 imports no module outside the keras family when loading (CVE-2025-1550).
  EXPECT_EQ(Find(R"({"class_name": "Lambda", "config": {"function": {
      "module": "tensorflow.python.ops.gen_nn_ops", "class_name": "function", "config": "relu6",
      "registered_name": "relu6"}}})"),
            Names{"relu6"});
}

TEST(FindCustomClasses, SerializationMarkersAreNotClassesButTheirContentsAreSearched) {
  EXPECT_EQ(Find(R"({"class_name": "Functional", "config": {"layers": [
      {"class_name": "Reshape", "config": {
        "target_shape": {"class_name": "__tuple__", "config": {"value": [4, 4]}},
        "spec": {"class_name": "__typespec__", "spec_name": "TensorSpec",
                 "module": "tensorflow.python.framework.tensor_spec",
                 "config": [[null, 3], "float32", null], "registered_name": null},
        "table": {"class_name": "__numpy__", "config": {"value": [1, 2], "dtype": "int32"}},
        "shape": {"class_name": "TensorShape", "items": [null, 3]},
        "pair": {"class_name": "__tuple__", "config": {"value": [
          {"class_name": "PairedThing", "config": {}}, 1]}}}}]}})"),
            Names{"PairedThing"});
}

TEST(FindCustomClasses, SkipsBuildConfigButSearchesCompileConfig) {
  EXPECT_EQ(Find(R"({"module": "keras", "class_name": "Sequential", "config": {"layers": []},
      "registered_name": null,
      "build_config": {"input_shape": [null, 16],
                       "odd": {"class_name": "NotAClass", "config": {}}},
      "compile_config": {"optimizer": {"module": "my_opt", "class_name": "Sophia", "config": {},
                                       "registered_name": "Sophia"},
                         "loss": "mse", "metrics": ["accuracy"]}})"),
            Names{"Sophia"});
}

TEST(FindCustomClasses, QKerasKeras3ModelReportsEveryCustomObjectOnce) {
  // Trimmed from keras3.14.1_custom_QKeras_QDense.keras in the corpus.
  const char* const model = R"({"module": "keras", "class_name": "Sequential", "config": {
      "name": "sequential", "dtype": {"module": "keras", "class_name": "DTypePolicy",
                                     "config": {"name": "float32"}, "registered_name": null},
      "layers": [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_shape": [null, 16], "name": "fc1_input"}, "registered_name": null},
        {"module": "qkeras.qlayers", "class_name": "QDense", "config": {"name": "fc1",
          "kernel_initializer": {"module": "qkeras.qlayers", "class_name": "QInitializer",
            "config": {"initializer": {"module": "keras.initializers", "class_name": "LecunUniform",
                                       "config": {"seed": null}, "registered_name": null},
                       "quantizer": {"module": "qkeras.quantizers", "class_name": "quantized_bits",
                                     "config": {"bits": 6}, "registered_name": "qkeras>quantized_bits"}},
            "registered_name": "qkeras>QInitializer"},
          "kernel_regularizer": {"module": "keras.regularizers", "class_name": "L1",
                                 "config": {"l1": 0.0001}, "registered_name": null},
          "kernel_constraint": {"module": "qkeras.qlayers", "class_name": "Clip",
                                "config": {"min_value": -1}, "registered_name": "qkeras>Clip"},
          "bias_constraint": {"module": "qkeras.qlayers", "class_name": "Clip",
                              "config": {"min_value": -1}, "registered_name": "qkeras>Clip"}},
         "registered_name": "qkeras>QDense", "build_config": {"input_shape": [null, 16]}},
        {"module": "qkeras.qlayers", "class_name": "QActivation", "config": {"name": "relu1",
          "activation": {"module": "qkeras.quantizers", "class_name": "quantized_relu",
                         "config": {"bits": 6}, "registered_name": "qkeras>quantized_relu"}},
         "registered_name": "qkeras>QActivation"},
        {"module": "keras.layers", "class_name": "Activation",
         "config": {"activation": "softmax"}, "registered_name": null}]}})";
  EXPECT_EQ(Find(model), (Names{"Clip", "QActivation", "QDense", "QInitializer", "quantized_bits",
                                "quantized_relu"}));
}

TEST(FindCustomClasses, Keras3LegacyHdf5ConfigHasNone) {
  // Keras 3 saving to .h5: layers without module, inner objects with one.
  EXPECT_EQ(Find(R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
      {"class_name": "InputLayer", "config": {"batch_shape": [null, 12]}},
      {"class_name": "Dense", "config": {"dtype": {"module": "keras", "class_name": "DTypePolicy",
        "config": {"name": "float32"}, "registered_name": null},
        "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                               "config": {"seed": null}, "registered_name": null}}}]}})",
                 R"({"loss": {"class_name": "BinaryCrossentropy", "config": {"axis": -1}},
                     "metrics": ["accuracy"],
                     "optimizer_config": {"class_name": "Adam", "config": {"amsgrad": false}}})"),
            Names{});
}

TEST(FindCustomClasses, IgnoresMalformedObjects) {
  EXPECT_EQ(Find(R"([
      {"class_name": "NoConfig"},
      {"class_name": 7, "config": {}},
      {"class_name": {"class_name": "Nested", "config": {}}, "config": {}},
      {"class_name": "", "config": {}},
      {"class_name": null, "config": null},
      {"class_name": "Weird", "config": 1, "module": 5}])"),
            (Names{"Nested", "Weird"}));
  for (const char* scalar : {"null", "1", "\"Dense\"", "true", "[]", "{}"}) {
    EXPECT_EQ(Find(scalar), Names{}) << scalar;
  }
}

TEST(FindCustomClasses, BoundsDepthOnHostileNesting) {
  json deep = {{"class_name", "TooDeep"}, {"config", json::object()}};
  for (int i = 0; i < 100000; ++i) {
    json outer = json::array();
    outer.push_back(std::move(deep));
    deep = std::move(outer);
  }
  json model = {{"class_name", "Shallow"}, {"config", {{"layers", std::move(deep)}}}};
  EXPECT_EQ(FindCustomClasses(model, nullptr), Names{"Shallow"});
}

TEST(FindCustomClasses, FindsClassesWellInsideTheDepthCap) {
  json nested = {{"class_name", "Deep200"}, {"config", json::object()}};
  for (int i = 0; i < 200; ++i) {
    json outer = json::array();
    outer.push_back(std::move(nested));
    nested = std::move(outer);
  }
  EXPECT_EQ(FindCustomClasses(nested, nullptr), Names{"Deep200"});
}

TEST(FindCustomClasses, HandlesWideConfigs) {
  json layers = json::array();
  for (int i = 0; i < 20000; ++i) {
    layers.push_back({{"class_name", i % 2 ? "Dense" : "Blob"}, {"config", {{"units", i}}}});
  }
  const json model = {{"class_name", "Sequential"}, {"config", {{"layers", std::move(layers)}}}};
  EXPECT_EQ(FindCustomClasses(model, nullptr), Names{"Blob"});
}

}  // namespace
}  // namespace ckptwatch
