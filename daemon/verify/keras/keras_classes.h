// Which classes in a Keras model config Keras itself does not ship: a model that names one loads
// only with custom_objects (or the package that defines it).
#pragma once

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ckptwatch {

/// True when `class_name` (exact, case-sensitive) is something Keras 1, 2 or 3 or tf.keras ships
/// under that name: a layer, model, initializer, regularizer, constraint, optimizer or schedule,
/// loss, metric, activation function, dtype policy or quantizer, or a serialization marker such
/// as "__tuple__". Also true for "Custom>Adam" and the like, which tf.keras 2.11-2.15 wrote for
/// its own optimizers.
bool IsBuiltinKerasClass(std::string_view class_name);

/// Sorted, de-duplicated names of the objects in `model_config`, and in `training_config`'s
/// optimizer_config/optimizer, loss, metrics and weighted_metrics when it is non-null, that Keras
/// does not ship. An object is any JSON object with a string "class_name" and a "config"; its
/// "module" and "registered_name" (Keras 3, tf.keras 2.13+) decide before the name does:
///  - module "keras", "keras.*", "tf_keras" or "tf_keras.*": built in, whatever the name;
///  - any other module but "builtins": custom, even for "Dense". Keras >= 3.9 (CVE-2025-1550)
///    imports only keras, keras_hub, keras_cv and keras_nlp modules when loading, so anything else
///    needs custom_objects, tensorflow.* included; keras_hub and the like load when installed,
///    but Keras does not ship them;
///  - module null with a registered_name (what Keras 3 writes for a class defined in __main__),
///    or a registered_name "package>Name" with a package other than keras: custom;
///  - otherwise the name must pass IsBuiltinKerasClass().
/// The reported name is the class_name ("QDense", "Custom>GarNet"); for a serialized function
/// ("class_name": "function") it is the function's name. "inbound_nodes" (call arguments) and
/// "build_config" (shapes) are not searched; Keras 3's "compile_config" is, like
/// training_config. Nesting deeper than 256 levels is not searched. Never throws.
std::vector<std::string> FindCustomClasses(const nlohmann::json& model_config,
                                           const nlohmann::json* training_config);

/// Calls `visit` with every JSON object FindCustomClasses() searches (same keys, same depth cap),
/// the model config's first, then training_config's. May throw what `visit` throws.
void ForEachKerasObject(const nlohmann::json& model_config, const nlohmann::json* training_config,
                        const std::function<void(const nlohmann::json&)>& visit);

/// One group of built-in names and the Keras sources it was read from.
struct BuiltinKerasGroup {
  std::string_view source;
  std::span<const std::string_view> names;  ///< Sorted, unique.
};

/// The groups IsBuiltinKerasClass() searches, for tests and documentation.
std::span<const BuiltinKerasGroup> BuiltinKerasGroups();

}  // namespace ckptwatch
