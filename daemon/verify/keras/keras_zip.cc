#include "verify/keras/keras_zip.h"

#include <fcntl.h>
#include <unistd.h>
#include <zip.h>

#include <cerrno>

#include <cstdio>
#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>

#include "verify/keras/keras_classes.h"
#include "verify/load_check.h"

namespace ckptwatch {
namespace {

constexpr char kWeightsEntry[] = "model.weights.h5";
constexpr char kConfigEntry[] = "config.json";
constexpr char kMetadataEntry[] = "metadata.json";
constexpr std::uint64_t kMaxZipJsonBytes = 256u << 20;

struct ZipCloser {
  // Read-only: discard never writes the archive back.
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipCloser>;

std::string ZipErrorText(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

// A zip is written front to back and its central directory comes last: a
// local-header signature with no end-of-central-directory record is a save
// that stopped part-way.
bool StartsLikeZip(int fd) {
  unsigned char magic[4] = {};
  return pread(fd, magic, 4, 0) == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0;
}

// Reads entry `index` through libzip, which verifies its CRC at the end.
// Keeps at most `keep` bytes in `*out`; false with `*error` on failure.
bool ReadEntry(zip_t* archive, zip_uint64_t index, std::uint64_t keep, std::vector<std::uint8_t>* out,
               std::string* error) {
  zip_stat_t stat;
  zip_stat_init(&stat);
  if (zip_stat_index(archive, index, 0, &stat) < 0) {
    *error = zip_strerror(archive);
    return false;
  }
  std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(zip_fopen_index(archive, index, 0), zip_fclose);
  if (!file) {
    *error = zip_strerror(archive);
    return false;
  }
  if (out && (stat.valid & ZIP_STAT_SIZE) && stat.size <= keep) out->reserve(stat.size);
  std::vector<std::uint8_t> chunk(1u << 20);
  while (true) {
    zip_int64_t n = zip_fread(file.get(), chunk.data(), chunk.size());
    if (n < 0) {
      *error = zip_error_strerror(zip_file_get_error(file.get()));
      return false;
    }
    if (n == 0) return true;
    if (out && out->size() + static_cast<std::uint64_t>(n) <= keep)
      out->insert(out->end(), chunk.begin(), chunk.begin() + n);
  }
}

}  // namespace

KerasArchive ReadKerasArchive(int fd, Level level, std::uint64_t memory_budget) {
  KerasArchive result;
  auto fail = [&](Verdict verdict, std::string reason) {
    result.verdict = verdict;
    result.reason = std::move(reason);
    return std::move(result);
  };

  // libzip reads through its own copy of the descriptor (zip_fdopen closes
  // it with the archive); no path is ever opened.
  int code = 0;
  int own_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own_fd < 0) return fail(Verdict::kCorrupt, std::string("cannot read the archive: ") + std::strerror(errno));
  ZipPtr archive(zip_fdopen(own_fd, ZIP_CHECKCONS, &code));
  if (!archive) close(own_fd);
  if (!archive) {
    if (code == ZIP_ER_NOZIP && StartsLikeZip(fd))
      return fail(Verdict::kTruncated,
                  "zip archive has no central directory: the .keras save was cut short "
                  "(disk full or writer killed during save?)");
    if (code == ZIP_ER_NOZIP)
      return fail(Verdict::kNotCheckpoint, "not a zip archive, so not a Keras 3 .keras file");
    if (code == ZIP_ER_INCONS || code == ZIP_ER_EOF)
      return fail(Verdict::kCorrupt, "zip archive is inconsistent (" + ZipErrorText(code) +
                                         "): entries do not match the central directory");
    return fail(Verdict::kCorrupt, "cannot open the zip archive: " + ZipErrorText(code));
  }

  std::string error;
  auto read_named = [&](const char* name, std::uint64_t keep, std::vector<std::uint8_t>* out,
                        bool* present) {
    zip_int64_t index = zip_name_locate(archive.get(), name, 0);
    *present = index >= 0;
    if (index < 0) return true;
    return ReadEntry(archive.get(), static_cast<zip_uint64_t>(index), keep, out, &error);
  };

  bool present = false;
  std::vector<std::uint8_t> metadata, config;
  if (!read_named(kMetadataEntry, kMaxZipJsonBytes, &metadata, &present))
    return fail(Verdict::kCorrupt, std::string(kMetadataEntry) + " in the archive is unreadable: " + error);
  if (present) {
    auto json = nlohmann::json::parse(metadata, nullptr, false);
    if (json.is_object() && json.contains("keras_version") && json["keras_version"].is_string())
      result.keras.version = json["keras_version"].get<std::string>();
  }
  if (!read_named(kConfigEntry, kMaxZipJsonBytes, &config, &present))
    return fail(Verdict::kCorrupt, std::string(kConfigEntry) + " in the archive is unreadable: " + error);
  if (!present)
    return fail(Verdict::kCorrupt, "the archive has no config.json: keras.saving.load_model will fail");
  auto json = nlohmann::json::parse(config, nullptr, false);
  if (json.is_discarded())
    return fail(Verdict::kCorrupt, "config.json in the archive is not valid JSON: load_model will fail");
  result.keras.kind = "keras3";
  result.keras.custom_classes = FindCustomClasses(json, nullptr);
  CollectKerasLoadFacts(json, nullptr, &result.keras);

  if (!read_named(kWeightsEntry, memory_budget, &result.weights, &present))
    return fail(Verdict::kCorrupt, std::string(kWeightsEntry) + " in the archive is unreadable: " + error);
  if (!present)
    return fail(Verdict::kCorrupt, "the archive has no model.weights.h5: load_model will fail");
  zip_stat_t stat;
  zip_stat_init(&stat);
  zip_stat(archive.get(), kWeightsEntry, 0, &stat);
  result.weights_over_budget = (stat.valid & ZIP_STAT_SIZE) && stat.size > result.weights.size();
  if (result.weights_over_budget) result.weights.clear();

  if (level == Level::kFull) {
    zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
    for (zip_int64_t i = 0; i < entries; ++i) {
      if (!ReadEntry(archive.get(), static_cast<zip_uint64_t>(i), 0, nullptr, &error))
        return fail(Verdict::kCorrupt, "entry " + std::string(zip_get_name(archive.get(), i, 0) ?: "?") +
                                           " in the archive is unreadable: " + error);
    }
  }
  return result;
}

}  // namespace ckptwatch
