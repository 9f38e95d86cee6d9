#include "verify/keras/keras_releases.h"

#include <algorithm>
#include <iterator>

namespace ckptwatch {
namespace keras_releases_data {
extern const KerasRelease kReleases[];
extern const std::size_t kReleaseCount;
extern const KerasNameMask kNames[];
extern const KerasNameMask kModules[];
extern const std::size_t kNameCount;
extern const std::size_t kModuleCount;
}  // namespace keras_releases_data

namespace {

std::uint32_t Lookup(std::span<const KerasNameMask> table, std::string_view name) {
  const auto it = std::ranges::lower_bound(table, name, {}, &KerasNameMask::name);
  return it != table.end() && it->name == name ? it->releases : 0;
}

}  // namespace

std::span<const KerasRelease> KerasReleases() {
  return {keras_releases_data::kReleases, keras_releases_data::kReleaseCount};
}

std::uint32_t ReleasesWithName(std::string_view name) {
  return Lookup({keras_releases_data::kNames, keras_releases_data::kNameCount}, name);
}

std::uint32_t ReleasesWithModule(std::string_view path) {
  return Lookup({keras_releases_data::kModules, keras_releases_data::kModuleCount}, path);
}

KerasLine LineOf(int major, int minor, std::string_view version_text) {
  if (major <= 1) return KerasLine::kKeras1;
  if (major >= 3) return KerasLine::kKeras3;
  const bool tf = version_text.find("-tf") != std::string_view::npos;
  return tf || minor >= 4 ? KerasLine::kTfKeras : KerasLine::kKeras2;
}

const KerasRelease* ReleaseFor(int major, int minor) {
  const KerasLine line = LineOf(major, minor, "");
  const KerasRelease* best = nullptr;
  const KerasRelease* first_of_line = nullptr;
  for (const KerasRelease& r : KerasReleases()) {
    if (r.line != line) continue;
    if (first_of_line == nullptr) first_of_line = &r;
    if (r.major < major || (r.major == major && r.minor <= minor)) best = &r;
  }
  return best != nullptr ? best : first_of_line;
}

int ReleaseIndex(const KerasRelease& release) {
  return static_cast<int>(&release - KerasReleases().data());
}

}  // namespace ckptwatch
