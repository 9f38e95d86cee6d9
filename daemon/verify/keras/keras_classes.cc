#include "verify/keras/keras_classes.h"

#include <algorithm>
#include <array>
#include <exception>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

namespace ckptwatch {
namespace {

// The built-in names, one sorted table per group so each can say where it was read from. A name
// may sit in several groups (Dense is a layer in every Keras). Aliases that Keras only ever
// accepts, never writes, are kept: a hand-edited or converted config may use them, and a missing
// built-in costs a false "custom" warning while an extra one costs almost nothing. The tables are
// packed by hand: clang-format would give each of the ~900 names a line of its own.
// clang-format off

// Keras 1.x layers: keras 1.2.2 keras/layers/{core,convolutional,pooling,local,recurrent,
// normalization,embeddings,noise,advanced_activations,wrappers,convolutional_recurrent}.py and
// keras/engine/topology.py (Input, InputLayer, Layer, Merge). Includes the 1.x aliases.
constexpr std::array<std::string_view, 77> kKeras1Layers{{
    "Activation", "ActivityRegularization", "AtrousConv1D", "AtrousConv2D", "AtrousConvolution1D",
    "AtrousConvolution2D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "BatchNormalization", "Bidirectional", "Conv1D", "Conv2D", "Conv3D", "ConvLSTM2D",
    "ConvRecurrent2D", "Convolution1D", "Convolution2D", "Convolution3D", "Cropping1D",
    "Cropping2D", "Cropping3D", "Deconv2D", "Deconvolution2D", "Dense", "Dropout", "ELU",
    "Embedding", "Flatten", "GRU", "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "GlobalMaxPooling3D", "Highway", "Input", "InputLayer", "LSTM", "Lambda", "Layer", "LeakyReLU",
    "LocallyConnected1D", "LocallyConnected2D", "Masking", "MaxPooling1D", "MaxPooling2D",
    "MaxPooling3D", "MaxoutDense", "Merge", "PReLU", "ParametricSoftplus", "Permute", "Recurrent",
    "RepeatVector", "Reshape", "SReLU", "SeparableConv2D", "SeparableConvolution2D", "SimpleRNN",
    "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "ThresholdedLinear",
    "ThresholdedReLU", "TimeDistributed", "TimeDistributedDense", "UpSampling1D", "UpSampling2D",
    "UpSampling3D", "Wrapper", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
}};

// Keras 2.0-2.3 (multi-backend) layers: keras/layers/__init__.py, including its legacy imports
// (keras/legacy/layers.py: Merge, MaxoutDense, Highway, AtrousConvolution*, Recurrent, ...).
constexpr std::array<std::string_view, 113> kKeras2Layers{{
    "Activation", "ActivityRegularization", "Add", "AlphaDropout", "AtrousConvolution1D",
    "AtrousConvolution2D", "Average", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "AvgPool1D", "AvgPool2D", "AvgPool3D", "BatchNormalization", "Bidirectional", "Concatenate",
    "Conv1D", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "ConvLSTM2D",
    "ConvLSTM2DCell", "ConvRecurrent2D", "Convolution1D", "Convolution2D", "Convolution3D",
    "Cropping1D", "Cropping2D", "Cropping3D", "CuDNNGRU", "CuDNNLSTM", "Deconvolution2D",
    "Deconvolution3D", "Dense", "DepthwiseConv2D", "Dot", "Dropout", "ELU", "Embedding", "Flatten",
    "GRU", "GRUCell", "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D",
    "GlobalAvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "Highway", "Input",
    "InputLayer", "InputSpec", "LSTM", "LSTMCell", "Lambda", "Layer", "LeakyReLU",
    "LocallyConnected1D", "LocallyConnected2D", "Masking", "MaxPool1D", "MaxPool2D", "MaxPool3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "Maximum", "MaxoutDense", "Merge", "Minimum",
    "Multiply", "PReLU", "Permute", "RNN", "ReLU", "Recurrent", "RepeatVector", "Reshape",
    "SeparableConv1D", "SeparableConv2D", "SimpleRNN", "SimpleRNNCell", "Softmax",
    "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "StackedRNNCells", "Subtract",
    "ThresholdedReLU", "TimeDistributed", "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "add", "average", "concatenate", "dot",
    "maximum", "minimum", "multiply", "subtract",
}};

// tf.keras (TF 1.13-2.15) and tf_keras layers: tf_keras/layers/__init__.py and the names
// tf_keras/layers/serialization.py resolves (op layers, BatchNormalizationV1/V2, DenseFeatures,
// SequenceFeatures); older TF names: TensorFlowOpLayer, AddLoss, AddMetric (TF 2.0-2.3),
// UnifiedGRU/UnifiedLSTM (TF 1.13), CategoryCrossing, IndexLookup (experimental preprocessing).
constexpr std::array<std::string_view, 175> kTfKerasLayers{{
    "AbstractRNNCell", "Activation", "ActivityRegularization", "Add", "AddLoss", "AddMetric",
    "AdditiveAttention", "AlphaDropout", "Attention", "Average", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
    "BatchNormalization", "BatchNormalizationV1", "BatchNormalizationV2", "Bidirectional",
    "CategoryCrossing", "CategoryEncoding", "CenterCrop", "ClassMethod", "Concatenate", "Conv1D",
    "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "ConvLSTM1D",
    "ConvLSTM2D", "ConvLSTM3D", "Convolution1D", "Convolution1DTranspose", "Convolution2D",
    "Convolution2DTranspose", "Convolution3D", "Convolution3DTranspose", "Cropping1D", "Cropping2D",
    "Cropping3D", "CuDNNGRU", "CuDNNLSTM", "Dense", "DenseFeatures", "DepthwiseConv1D",
    "DepthwiseConv2D", "DeviceWrapper", "Discretization", "Dot", "Dropout", "DropoutWrapper", "ELU",
    "EinsumDense", "Embedding", "Flatten", "GRU", "GRUCell", "GRUCellV1", "GRUCellV2", "GRUV1",
    "GRUV2", "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
    "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GroupNormalization", "HashedCrossing", "Hashing",
    "Identity", "IndexLookup", "Input", "InputLayer", "InputSpec", "InstanceMethod",
    "InstanceProperty", "IntegerLookup", "LSTM", "LSTMCell", "LSTMCellV1", "LSTMCellV2", "LSTMV1",
    "LSTMV2", "Lambda", "Layer", "LayerNormalization", "LeakyReLU", "LocallyConnected1D",
    "LocallyConnected2D", "Masking", "MaxPool1D", "MaxPool2D", "MaxPool3D", "MaxPooling1D",
    "MaxPooling2D", "MaxPooling3D", "Maximum", "Minimum", "MultiHeadAttention", "Multiply",
    "Normalization", "PReLU", "PeepholeLSTMCell", "Permute", "PreprocessingLayer", "RNN",
    "RandomBrightness", "RandomContrast", "RandomCrop", "RandomFlip", "RandomFourierFeatures",
    "RandomHeight", "RandomRotation", "RandomTranslation", "RandomWidth", "RandomZoom", "ReLU",
    "RepeatVector", "Rescaling", "Reshape", "ResidualWrapper", "Resizing", "SeparableConv1D",
    "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D", "SequenceFeatures",
    "SimpleRNN", "SimpleRNNCell", "SlicingOpLambda", "Softmax", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "SpectralNormalization", "StackedRNNCells",
    "StringLookup", "Subtract", "SyncBatchNormalization", "TFOpLambda", "TFSMLayer",
    "TensorFlowOpLayer", "TextVectorization", "ThresholdedReLU", "TimeDistributed", "UnifiedGRU",
    "UnifiedLSTM", "UnitNormalization", "UpSampling1D", "UpSampling2D", "UpSampling3D", "Wrapper",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "add", "average", "concatenate", "dot",
    "maximum", "minimum", "multiply", "subtract",
}};

// Keras 3 layers: keras/api/layers/__init__.py (public names, which is what Keras 3 writes as
// class_name) and keras/src/layers/__init__.py, through Keras 3.14 (image augmentation, adaptive
// pooling, RMSNormalization, ReversibleEmbedding, backend wrappers).
constexpr std::array<std::string_view, 183> kKeras3Layers{{
    "Activation", "ActivityRegularization", "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D", "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D", "Add", "AdditiveAttention", "AlphaDropout", "Attention", "AugMix",
    "AutoContrast", "Average", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "AvgPool1D", "AvgPool2D", "AvgPool3D", "BatchNormalization", "Bidirectional", "CLAHE",
    "CategoryEncoding", "CenterCrop", "Concatenate", "ContrastLimitedAdaptiveHistogramEqualization",
    "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose",
    "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "Convolution1D", "Convolution1DTranspose",
    "Convolution2D", "Convolution2DTranspose", "Convolution3D", "Convolution3DTranspose",
    "Cropping1D", "Cropping2D", "Cropping3D", "CutMix", "Dense", "DepthwiseConv1D",
    "DepthwiseConv2D", "Discretization", "Dot", "Dropout", "ELU", "EinsumDense", "Embedding",
    "Equalization", "Flatten", "FlaxLayer", "GRU", "GRUCell", "GaussianDropout", "GaussianNoise",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalAvgPool1D",
    "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GroupNormalization",
    "GroupQueryAttention", "GroupedQueryAttention", "HashedCrossing", "Hashing", "Identity",
    "IndexLookup", "Input", "InputLayer", "InputSpec", "IntegerLookup", "JaxLayer", "LSTM",
    "LSTMCell", "Lambda", "Layer", "LayerNormalization", "LeakyReLU", "Masking",
    "MaxNumBoundingBoxes", "MaxPool1D", "MaxPool2D", "MaxPool3D", "MaxPooling1D", "MaxPooling2D",
    "MaxPooling3D", "Maximum", "MelSpectrogram", "Minimum", "MixUp", "MultiHeadAttention",
    "Multiply", "Normalization", "PReLU", "Permute", "Pipeline", "RMSNormalization", "RNN",
    "RandAugment", "RandomApply", "RandomBrightness", "RandomChoice", "RandomColorDegeneration",
    "RandomColorJitter", "RandomContrast", "RandomCrop", "RandomElasticTransform", "RandomErasing",
    "RandomFlip", "RandomGaussianBlur", "RandomGrayscale", "RandomHeight", "RandomHue",
    "RandomInvert", "RandomPerspective", "RandomPosterization", "RandomRotation",
    "RandomSaturation", "RandomSharpness", "RandomShear", "RandomTranslation", "RandomWidth",
    "RandomZoom", "ReLU", "ReconstructPatches2D", "ReconstructPatches3D", "RepeatVector",
    "Rescaling", "Reshape", "Resizing", "ReversibleEmbedding", "STFTSpectrogram", "SeparableConv1D",
    "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D", "SimpleRNN",
    "SimpleRNNCell", "Softmax", "Solarization", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "SpectralNormalization", "StackedRNNCells", "StringLookup", "Subtract",
    "TFSMLayer", "TextVectorization", "ThresholdedReLU", "TimeDistributed", "TorchModuleWrapper",
    "UnitNormalization", "UpSampling1D", "UpSampling2D", "UpSampling3D", "Wrapper", "ZeroPadding1D",
    "ZeroPadding2D", "ZeroPadding3D", "add", "average", "concatenate", "dot", "maximum", "minimum",
    "multiply", "subtract",
}};

// Models: Sequential/Model everywhere; Container (Keras 1 engine), Graph (Keras 1 legacy),
// Network (Keras 2.1-2.3, tf.keras 1.x), Functional (tf.keras 2.4+, Keras 3), premade and
// preprocessing-stage models (tf.keras), Distiller (keras/api/distillation).
constexpr std::array<std::string_view, 11> kModels{{
    "Container", "Distiller", "Functional", "FunctionalPreprocessingStage", "Graph", "LinearModel",
    "Model", "Network", "PreprocessingStage", "Sequential", "WideDeepModel",
}};

// Initializers: keras 2.x keras/initializers.py, tf_keras/initializers/__init__.py (V2 and
// snake_case aliases), TF 1.x init_ops (UniformUnitScaling, Convolution*Orthogonal) and
// keras/api/initializers/__init__.py (Keras 3).
constexpr std::array<std::string_view, 67> kInitializers{{
    "Constant", "ConstantV2", "ConvolutionDeltaOrthogonal", "ConvolutionOrthogonal",
    "ConvolutionOrthogonal1D", "ConvolutionOrthogonal2D", "ConvolutionOrthogonal3D", "GlorotNormal",
    "GlorotNormalV2", "GlorotUniform", "GlorotUniformV2", "HeNormal", "HeNormalV2", "HeUniform",
    "HeUniformV2", "Identity", "IdentityInitializer", "IdentityV2", "Initializer", "LecunNormal",
    "LecunNormalV2", "LecunUniform", "LecunUniformV2", "Ones", "OnesV2", "Orthogonal",
    "OrthogonalInitializer", "OrthogonalV2", "RandomNormal", "RandomNormalV2", "RandomUniform",
    "RandomUniformV2", "STFT", "STFTInitializer", "TruncatedNormal", "TruncatedNormalV2",
    "UniformUnitScaling", "VarianceScaling", "VarianceScalingV2", "Zeros", "ZerosV2", "constant",
    "glorot_normal", "glorot_normalV2", "glorot_uniform", "glorot_uniformV2", "he_normal",
    "he_normalV2", "he_uniform", "he_uniformV2", "identity", "lecun_normal", "lecun_normalV2",
    "lecun_uniform", "lecun_uniformV2", "normal", "one", "ones", "orthogonal", "random_normal",
    "random_uniform", "stft", "truncated_normal", "uniform", "variance_scaling", "zero", "zeros",
}};

// Regularizers: keras 1.2 keras/regularizers.py, keras 2.x and tf_keras regularizers.py,
// keras/api/regularizers/__init__.py (Keras 3).
constexpr std::array<std::string_view, 16> kRegularizers{{
    "ActivityRegularizer", "EigenvalueRegularizer", "L1", "L1L2", "L2", "OrthogonalRegularizer",
    "Regularizer", "WeightRegularizer", "activity_l1", "activity_l1l2", "activity_l2", "l1",
    "l1_l2", "l1l2", "l2", "orthogonal_regularizer",
}};

// Constraints: keras 1.2/2.x keras/constraints.py (with the maxnorm/nonneg/unitnorm aliases),
// tf_keras constraints.py (RadialConstraint), keras/api/constraints/__init__.py (Keras 3).
constexpr std::array<std::string_view, 13> kConstraints{{
    "Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "RadialConstraint", "UnitNorm", "max_norm",
    "maxnorm", "min_max_norm", "non_neg", "nonneg", "unit_norm", "unitnorm",
}};

// Optimizers: keras 1.2/2.x keras/optimizers.py, tf_keras/optimizers/__init__.py (legacy and
// 2022 optimizers, loss scaling, and the lower-case names its case-insensitive lookup accepts),
// keras/api/optimizers/__init__.py (Keras 3), learning-rate schedules (keras.optimizers.schedules,
// tf.keras.experimental) and TF 2.1-2.3 mixed-precision loss scales.
constexpr std::array<std::string_view, 49> kOptimizers{{
    "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "CosineDecay",
    "CosineDecayRestarts", "DynamicLossScale", "ExponentialDecay", "FixedLossScale", "Ftrl",
    "InverseTimeDecay", "Lamb", "LearningRateSchedule", "LinearCosineDecay", "Lion", "LossScale",
    "LossScaleOptimizer", "LossScaleOptimizerV1", "LossScaleOptimizerV3", "Muon", "Nadam",
    "NoisyLinearCosineDecay", "Optimizer", "OptimizerV2", "PiecewiseConstantDecay",
    "PolynomialDecay", "RMSprop", "SGD", "TFOptimizer", "adadelta", "adafactor", "adagrad", "adam",
    "adamax", "adamw", "experimentaladadelta", "experimentaladagrad", "experimentaladam",
    "experimentalsgd", "ftrl", "lion", "lossscaleoptimizer", "lossscaleoptimizerv1",
    "lossscaleoptimizerv3", "nadam", "rmsprop", "sgd",
}};

// Losses, classes and functions: keras 1.2/2.x keras/losses.py, tf_keras/losses.py,
// keras/api/losses/__init__.py (Keras 3) and keras/api/distillation.
constexpr std::array<std::string_view, 67> kLosses{{
    "BCE", "BinaryCrossentropy", "BinaryFocalCrossentropy", "CTC", "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy", "CategoricalGeneralizedCrossEntropy", "CategoricalHinge",
    "Circle", "CosineSimilarity", "Dice", "DistillationLoss", "FeatureDistillation", "Hinge",
    "Huber", "KLD", "KLDivergence", "LogCosh", "LogitsDistillation", "Loss", "LossFunctionWrapper",
    "MAE", "MAPE", "MSE", "MSLE", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredError", "MeanSquaredLogarithmicError", "Poisson", "Reduction",
    "SparseCategoricalCrossentropy", "SquaredHinge", "Tversky", "bce", "binary_crossentropy",
    "binary_focal_crossentropy", "categorical_crossentropy", "categorical_focal_crossentropy",
    "categorical_generalized_cross_entropy", "categorical_hinge", "circle", "cosine",
    "cosine_proximity", "cosine_similarity", "ctc", "dice", "hinge", "huber", "huber_loss",
    "kl_divergence", "kld", "kullback_leibler_divergence", "log_cosh", "logcosh", "mae", "mape",
    "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_error",
    "mean_squared_logarithmic_error", "mse", "msle", "poisson", "sparse_categorical_crossentropy",
    "squared_hinge", "tversky",
}};

// Metrics, classes and functions: keras 1.2/2.x keras/metrics.py, tf_keras/metrics/__init__.py,
// keras/api/metrics/__init__.py (Keras 3). Loss functions used as metrics are in kLosses.
constexpr std::array<std::string_view, 63> kMetrics{{
    "ACC", "AUC", "Accuracy", "BinaryAccuracy", "BinaryCrossentropy", "BinaryIoU",
    "CategoricalAccuracy", "CategoricalCrossentropy", "CategoricalHinge", "ConcordanceCorrelation",
    "CosineSimilarity", "F1Score", "FBetaScore", "FalseNegatives", "FalsePositives", "Hinge", "IoU",
    "KLDivergence", "LogCoshError", "Mean", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanIoU", "MeanMetricWrapper", "MeanRelativeError", "MeanSquaredError",
    "MeanSquaredLogarithmicError", "MeanTensor", "Metric", "OneHotIoU", "OneHotMeanIoU",
    "PearsonCorrelation", "Poisson", "Precision", "PrecisionAtRecall", "PyMetric", "R2Score",
    "Recall", "RecallAtPrecision", "Reduce", "RootMeanSquaredError", "SensitivityAtSpecificity",
    "SensitivitySpecificityBase", "SparseCategoricalAccuracy", "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy", "SpecificityAtSensitivity", "SquaredHinge", "Sum",
    "SumOverBatchSize", "SumOverBatchSizeMetricWrapper", "TopKCategoricalAccuracy", "TrueNegatives",
    "TruePositives", "acc", "accuracy", "binary_accuracy", "categorical_accuracy",
    "concordance_correlation", "pearson_correlation", "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "top_k_categorical_accuracy",
}};

// Activation functions, which a config can name where a class would go: keras 1.2/2.x
// keras/activations.py, tf_keras/activations.py, keras/src/activations (Keras 3, through 3.14).
constexpr std::array<std::string_view, 34> kActivations{{
    "celu", "crelu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid",
    "hard_silu", "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax",
    "mish", "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softmax_v2",
    "softplus", "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish",
    "tanh", "tanh_shrink", "threshold",
}};

// Dtype policies and quantizers: tf.keras mixed_precision (Policy, PolicyV1, DTypePolicy),
// keras/src/dtype_policies/__init__.py and keras/src/quantizers/__init__.py (Keras 3).
constexpr std::array<std::string_view, 19> kDtypePolicies{{
    "AWQConfig", "AWQDTypePolicy", "AbsMaxQuantizer", "DTypePolicy", "DTypePolicyMap",
    "Float8QuantizationConfig", "FloatDTypePolicy", "GPTQConfig", "GPTQDTypePolicy",
    "Int4DTypePolicy", "Int4QuantizationConfig", "Int8QuantizationConfig", "Policy", "PolicyV1",
    "QuantizationConfig", "QuantizedDTypePolicy", "QuantizedFloat8DTypePolicy", "Quantizer",
    "TernaryDTypePolicy",
}};

// Serialization markers, not user classes: keras/src/saving/serialization_lib.py (Keras 3:
// __bytes__, __slice__, __ellipsis__, __keras_tensor__, __tensor__, __numpy__, __lambda__,
// __typespec__, and "function" for a named function) and tf_keras saved_model/json_utils.py
// (__tuple__, __bytes__, __ellipsis__, TensorShape, TypeSpec, CompositeTensor).
constexpr std::array<std::string_view, 14> kSerializationHelpers{{
    "CompositeTensor", "KerasTensor", "TensorShape", "TypeSpec", "__bytes__", "__ellipsis__",
    "__keras_tensor__", "__lambda__", "__numpy__", "__slice__", "__tensor__", "__tuple__",
    "__typespec__", "function",
}};
// clang-format on

constexpr bool IsSortedUnique(std::span<const std::string_view> names) {
  return std::ranges::adjacent_find(names, std::ranges::greater_equal{}) == names.end();
}

constexpr std::array<BuiltinKerasGroup, 14> kGroups{{
    {"Keras 1.x layers", kKeras1Layers},
    {"Keras 2.0-2.3 layers", kKeras2Layers},
    {"tf.keras / tf_keras layers", kTfKerasLayers},
    {"Keras 3 layers", kKeras3Layers},
    {"models", kModels},
    {"initializers", kInitializers},
    {"regularizers", kRegularizers},
    {"constraints", kConstraints},
    {"optimizers and schedules", kOptimizers},
    {"losses", kLosses},
    {"metrics", kMetrics},
    {"activations", kActivations},
    {"dtype policies and quantizers", kDtypePolicies},
    {"serialization markers", kSerializationHelpers},
}};

static_assert(std::ranges::all_of(kGroups,
                                  [](const BuiltinKerasGroup& g) {
                                    return IsSortedUnique(g.names);
                                  }),
              "every built-in table must be sorted and unique for binary search");

// Far deeper than any real model (a nested model adds three levels, a layer's initializer two);
// the cap keeps hostile input from costing more than its size.
constexpr int kMaxConfigDepth = 256;

using Json = nlohmann::json;

const Json* Field(const Json& object, std::string_view key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string_view StringOrEmpty(const Json* value) {
  if (value == nullptr || !value->is_string()) return {};
  return value->get_ref<const std::string&>();
}

bool IsKerasModule(std::string_view module) {
  for (std::string_view root : {"keras", "tf_keras"}) {
    if (module == root) return true;
    if (module.size() > root.size() && module.starts_with(root) && module[root.size()] == '.')
      return true;
  }
  return false;
}

bool IsSerializationMarker(std::string_view class_name) {
  // "function" is a marker too, but it names a function that must itself be checked.
  return class_name != "function" && std::ranges::binary_search(kSerializationHelpers, class_name);
}

// The name to report when `object` is a serialized object Keras does not ship.
std::optional<std::string> CustomName(const Json& object) {
  const std::string_view class_name = StringOrEmpty(Field(object, "class_name"));
  if (class_name.empty() || !object.contains("config")) return std::nullopt;
  // Markers carry a module of their own (__typespec__: "tensorflow.python..."): not a class.
  if (IsSerializationMarker(class_name)) return std::nullopt;

  const std::string_view registered_name = StringOrEmpty(Field(object, "registered_name"));
  std::string_view name = class_name;
  if (class_name == "function") {
    name = StringOrEmpty(Field(object, "config"));
    if (name.empty()) name = registered_name;
    if (name.empty()) return std::nullopt;
  }

  if (const Json* module = Field(object, "module")) {
    const std::string_view module_name = StringOrEmpty(module);
    if (IsKerasModule(module_name)) return std::nullopt;
    // "builtins" is how Keras 3 writes a built-in function it knows only by name.
    if (!module_name.empty() && module_name != "builtins") return std::string(name);
    if (module->is_null() && !registered_name.empty()) return std::string(name);
  }
  if (const auto gt = registered_name.find('>'); gt != std::string_view::npos) {
    const std::string_view package = registered_name.substr(0, gt);
    if (package != "keras" && package != "tf_keras") return std::string(name);
  }
  if (IsBuiltinKerasClass(name)) return std::nullopt;
  return std::string(name);
}

bool IsSkippedKey(std::string_view key) {
  // Call arguments and build shapes, never classes Keras resolves by name; a layer *named*
  // like a class sits in them, and so do Keras 3's __keras_tensor__ records.
  return key == "inbound_nodes" || key == "build_config";
}

void VisitJson(const Json& root, const std::function<void(const Json&)>& visit) {
  // An explicit stack: a config is untrusted, and recursion depth would be the input's to pick.
  std::vector<std::pair<const Json*, int>> stack{{&root, 0}};
  while (!stack.empty()) {
    const auto [node, depth] = stack.back();
    stack.pop_back();
    if (node->is_object()) {
      visit(*node);
      if (depth >= kMaxConfigDepth) continue;
      for (auto it = node->begin(); it != node->end(); ++it) {
        if (it->is_structured() && !IsSkippedKey(it.key())) stack.emplace_back(&*it, depth + 1);
      }
    } else if (node->is_array() && depth < kMaxConfigDepth) {
      for (const Json& child : *node) {
        if (child.is_structured()) stack.emplace_back(&child, depth + 1);
      }
    }
  }
}

}  // namespace

bool IsBuiltinKerasClass(std::string_view class_name) {
  for (const BuiltinKerasGroup& group : kGroups) {
    if (std::ranges::binary_search(group.names, class_name)) return true;
  }
  // tf.keras 2.11-2.15 registered its new optimizers without a package, so HDF5 files saved by
  // those versions name them "Custom>Adam"; those versions load them without custom_objects.
  constexpr std::string_view kUnpackaged = "Custom>";
  return class_name.starts_with(kUnpackaged) &&
         std::ranges::binary_search(kOptimizers, class_name.substr(kUnpackaged.size()));
}

void ForEachKerasObject(const nlohmann::json& model_config, const nlohmann::json* training_config,
                        const std::function<void(const nlohmann::json&)>& visit) {
  VisitJson(model_config, visit);
  if (training_config != nullptr && training_config->is_object()) {
    // Only what compile() deserializes; "optimizer" is Keras 3's compile_config spelling.
    for (std::string_view key : {"optimizer_config", "optimizer", "loss", "metrics", "weighted_metrics"}) {
      if (const Json* value = Field(*training_config, key)) VisitJson(*value, visit);
    }
  }
}

std::vector<std::string> FindCustomClasses(const nlohmann::json& model_config,
                                           const nlohmann::json* training_config) {
  std::set<std::string> found;
  try {
    ForEachKerasObject(model_config, training_config, [&](const Json& object) {
      if (auto name = CustomName(object)) found.insert(std::move(*name));
    });
  } catch (const std::exception&) {
    // Only allocation can fail here; report what was found rather than nothing.
  }
  return {found.begin(), found.end()};
}

std::span<const BuiltinKerasGroup> BuiltinKerasGroups() { return kGroups; }

}  // namespace ckptwatch
