// What each Keras release can deserialize: its built-in class names and module paths, read from
// the Keras sources of each release by gen_keras_releases.py (keras_releases_data.cc).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ckptwatch {

/// A Keras release line: what a version number means for loading.
enum class KerasLine {
  kKeras1,   ///< keras 1.x (multi-backend).
  kKeras2,   ///< keras 2.0-2.3 (multi-backend: TensorFlow, Theano, CNTK).
  kTfKeras,  ///< tf.keras 2.4-2.15 and tf_keras 2.16+ (TensorFlow only).
  kKeras3,   ///< keras 3 (TensorFlow, JAX, PyTorch).
};

/// One release the tables were generated from.
struct KerasRelease {
  enum Flag : std::uint32_t {
    kReadsKerasArchive = 1,      ///< load_model reads a `.keras` zip (saving_lib).
    kConvertsKeras1Configs = 2,  ///< legacy/interfaces.py maps Keras 1 argument names.
    kConvertsTheanoKernels = 4,  ///< Loading flips conv kernels saved by another backend.
    kLambdaSafeMode = 8,         ///< Lambda.from_config refuses bytecode in safe mode.
  };
  std::string_view version;  ///< "2.15.0".
  std::string_view source;   ///< "keras-team/keras v2.15.0 (commit)".
  int major, minor, patch;
  KerasLine line;
  std::uint32_t flags;
  int names;  ///< Built-in names read from it.

  bool Has(Flag flag) const { return (flags & flag) != 0; }
};

/// A name (or module path) and the releases that have it: bit i is KerasReleases()[i].
struct KerasNameMask {
  std::string_view name;
  std::uint32_t releases;
};

/// The releases, oldest first.
std::span<const KerasRelease> KerasReleases();
/// Releases that ship `name` as a built-in class or function; 0 when none does.
std::uint32_t ReleasesWithName(std::string_view name);
/// Releases in which the module `path` ("keras.src.engine.functional") exists; 0 when none.
std::uint32_t ReleasesWithModule(std::string_view path);
/// The release whose tables stand for Keras `major.minor`: the newest generated release at or
/// before it in the same line (tf.keras 2.4/2.5 use 2.6.0, the first generated), else null.
const KerasRelease* ReleaseFor(int major, int minor);
/// Index of `release` in KerasReleases().
int ReleaseIndex(const KerasRelease& release);

/// The line a saving Keras version belongs to ("2.2.4-tf" is tf.keras; "2.4.0"+ too).
KerasLine LineOf(int major, int minor, std::string_view version_text);

}  // namespace ckptwatch
