#include "verify/engine/warm_up.h"

#include <fcntl.h>
#include <hdf5.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
#include "base/write_all.h"
#include "verify/verdict.h"

namespace ckptwatch {
namespace {

struct WarmUpLayer {
  const char* name;
  hsize_t inputs;
  hsize_t units;
};

// Two Dense layers, 16 → 32 → 10, as tests/writers.py's dense_stack() less its last layer: a
// few KiB of weights, enough to walk every kind of object a Keras file has.
constexpr WarmUpLayer kLayers[] = {{"dense_1", 16, 32}, {"dense_2", 32, 10}};

// Fixed-length, null-padded strings of `width` bytes, `count` of them (a scalar when 0): what
// h5py writes for Keras 2's `str.encode()` attributes. `packed` holds them end to end.
bool StringAttribute(hid_t object, const char* name, std::size_t width, hsize_t count,
                     const std::string& packed) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, std::max<std::size_t>(width, 1));
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  hid_t space = count == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, nullptr);
  hid_t attribute = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  const bool ok = attribute >= 0 && H5Awrite(attribute, type, packed.data()) >= 0;
  if (attribute >= 0) H5Aclose(attribute);
  H5Sclose(space);
  H5Tclose(type);
  return ok;
}

bool StringAttribute(hid_t object, const char* name, const std::string& value) {
  return StringAttribute(object, name, value.size(), 0, value);
}

bool StringListAttribute(hid_t object, const char* name, const std::vector<std::string>& values) {
  std::size_t width = 1;
  for (const std::string& value : values) width = std::max(width, value.size());
  std::string packed(width * values.size(), '\0');
  for (std::size_t i = 0; i < values.size(); ++i)
    std::memcpy(packed.data() + i * width, values[i].data(), values[i].size());
  return StringAttribute(object, name, width, values.size(), packed);
}

// `path` ("dense_1/kernel:0") below `group`, its intermediate group created as h5py does.
bool FloatDataset(hid_t group, const std::string& path, std::vector<hsize_t> dims) {
  hsize_t count = 1;
  for (hsize_t dim : dims) count *= dim;
  std::vector<float> values(count);
  for (hsize_t i = 0; i < count; ++i) values[i] = static_cast<float>(i % 7) * 0.125f - 0.375f;
  hid_t links = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(links, 1);
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t dataset =
      H5Dcreate2(group, path.c_str(), H5T_IEEE_F32LE, space, links, H5P_DEFAULT, H5P_DEFAULT);
  const bool ok = dataset >= 0 && H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                           values.data()) >= 0;
  if (dataset >= 0) H5Dclose(dataset);
  H5Sclose(space);
  H5Pclose(links);
  return ok;
}

std::string ModelConfig() {
  nlohmann::json layers = nlohmann::json::array();
  layers.push_back({{"class_name", "InputLayer"},
                    {"config",
                     {{"batch_input_shape", {nullptr, kLayers[0].inputs}},
                      {"dtype", "float32"},
                      {"sparse", false},
                      {"ragged", false},
                      {"name", "dense_1_input"}}}});
  for (const WarmUpLayer& layer : kLayers)
    layers.push_back({{"class_name", "Dense"},
                      {"config",
                       {{"name", layer.name},
                        {"trainable", true},
                        {"dtype", "float32"},
                        {"units", layer.units},
                        {"activation", "relu"},
                        {"use_bias", true}}}});
  return nlohmann::json{{"class_name", "Sequential"},
                        {"config", {{"name", "sequential"}, {"layers", layers}}}}
      .dump();
}

bool FillModel(hid_t file) {
  bool ok = StringAttribute(file, "keras_version", "2.4.0") &&
            StringAttribute(file, "backend", "tensorflow") &&
            StringAttribute(file, "model_config", ModelConfig());
  hid_t weights = H5Gcreate2(file, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (weights < 0) return false;
  std::vector<std::string> names;
  for (const WarmUpLayer& layer : kLayers) names.emplace_back(layer.name);
  ok = ok && StringListAttribute(weights, "layer_names", names) &&
       StringAttribute(weights, "backend", "tensorflow") &&
       StringAttribute(weights, "keras_version", "2.4.0");
  for (const WarmUpLayer& layer : kLayers) {
    hid_t group = H5Gcreate2(weights, layer.name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (group < 0) {
      ok = false;
      break;
    }
    const std::string kernel = std::string(layer.name) + "/kernel:0";
    const std::string bias = std::string(layer.name) + "/bias:0";
    ok = ok && StringListAttribute(group, "weight_names", {kernel, bias}) &&
         FloatDataset(group, kernel, {layer.inputs, layer.units}) &&
         FloatDataset(group, bias, {layer.units});
    H5Gclose(group);
  }
  H5Gclose(weights);
  return ok;
}

std::vector<std::uint8_t> BuildImage() {
  hid_t access = H5Pcreate(H5P_FILE_ACCESS);
  // In memory only: the core driver with no backing store opens and writes no file.
  H5Pset_fapl_core(access, 64 << 10, /*backing_store=*/false);
  hid_t file = H5Fcreate("ckptwatch-warm-up.h5", H5F_ACC_TRUNC, H5P_DEFAULT, access);
  H5Pclose(access);
  std::vector<std::uint8_t> image;
  if (file < 0) return image;
  if (FillModel(file) && H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0) {
    const ssize_t size = H5Fget_file_image(file, nullptr, 0);
    if (size > 0) {
      image.resize(static_cast<std::size_t>(size));
      if (H5Fget_file_image(file, image.data(), image.size()) != size) image.clear();
    }
  }
  H5Fclose(file);
  return image;
}

// The image in a sealed memfd, above the descriptors a child is given (1-4).
int MakeWarmUpFd(std::string* err) {
  const std::vector<std::uint8_t>& image = WarmUpImage();
  if (image.empty()) return (*err = "libhdf5 could not write the warm-up file", -1);
  UniqueFd fd(memfd_create("ckptwatch-warm-up", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return (*err = std::string("memfd_create: ") + std::strerror(errno), -1);
  if (!WriteAll(fd.get(), image.data(), image.size()))
    return (*err = std::string("write: ") + std::strerror(errno), -1);
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
    return (*err = std::string("sealing: ") + std::strerror(errno), -1);
  const int high = fcntl(fd.get(), F_DUPFD_CLOEXEC, kWarmUpFdMin);
  if (high < 0) return (*err = std::string("F_DUPFD: ") + std::strerror(errno), -1);
  return high;
}

int warm_up_fd = -1;  // set once, by WarmUpFd(); a fork inherits it with the descriptor

}  // namespace

const std::vector<std::uint8_t>& WarmUpImage() {
  static const std::vector<std::uint8_t> image = BuildImage();
  return image;
}

void KeepFreedHeapForNextFile() {
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kHeapMmapThreshold));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(kHeapTrimThreshold));
}

int WarmUpFd(std::string* err) {
  static std::string error;
  static const int fd = warm_up_fd = MakeWarmUpFd(&error);
  if (fd < 0) *err = error;
  return fd;
}

bool HasWarmUpFd() { return warm_up_fd >= 0; }

bool WarmUp(const VerifyOptions& options, std::string* err) {
  const int fd = WarmUpFd(err);
  if (fd < 0) return false;
  const VerifyResult result = VerifyOpenFile(fd, "warm-up.h5", options);
  if (result.verdict != Verdict::kOk)
    return (*err = "the warm-up file's verdict is " + std::string(VerdictName(result.verdict)) +
                   ": " + result.reason,
            false);
  if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0)
    return (*err = "a libhdf5 handle of the warm-up file is still open", false);
  return true;
}

}  // namespace ckptwatch
