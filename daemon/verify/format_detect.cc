#include "verify/format_detect.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <vector>

#include "verify/safetensors/safetensors.h"
#include "verify/zip/zip_directory.h"

namespace ckptwatch {
namespace {

constexpr std::size_t kHeadBytes = 4096;
constexpr char kHdf5Signature[] = "\x89HDF\r\n\x1a\n";
constexpr char kLfsPointer[] = "version https://git-lfs.github.com/spec/";
// torch's legacy magic number 0x1950a86a20f9469cfc6c as a LONG1 operand, and as text.
constexpr char kTorchMagicLong1[] = "\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
constexpr char kTorchMagicText[] = "L119547037146038801333356";

std::vector<std::uint8_t> Head(const ReadAt& read_at, std::uint64_t file_size) {
  std::vector<std::uint8_t> head(static_cast<std::size_t>(std::min<std::uint64_t>(file_size, kHeadBytes)));
  std::size_t got = 0;
  while (got < head.size()) {
    const long n = read_at(got, head.data() + got, head.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  head.resize(got);
  return head;
}

bool StartsWith(const std::vector<std::uint8_t>& head, std::string_view prefix, std::size_t at = 0) {
  return head.size() >= at + prefix.size() && std::memcmp(head.data() + at, prefix.data(), prefix.size()) == 0;
}

bool HasHdf5Signature(const ReadAt& read_at, std::uint64_t file_size) {
  // As H5FD_locate_signature: offset 0, then each power of two from 512.
  for (std::uint64_t offset = 0; offset + 8 <= file_size; offset = offset ? offset * 2 : 512) {
    char sig[8];
    if (read_at(offset, sig, 8) == 8 && std::memcmp(sig, kHdf5Signature, 8) == 0) return true;
    if (offset > (std::uint64_t{1} << 62)) break;
  }
  return false;
}

// The names Keras's load_model and load_weights give to h5py (Keras 3: endswith((".h5", ".hdf5"));
// ".weights.h5" included); a .keras goes to zipfile.
bool NamedAsHdf5(std::string_view name) { return name.ends_with(".h5") || name.ends_with(".hdf5"); }

FileFormat ZipKind(const ReadAt& read_at, std::uint64_t file_size) {
  ZipDirectory dir = ReadZipDirectory(read_at, file_size);
  std::vector<std::string> names;
  if (dir.verdict == Verdict::kOk)
    for (const ZipEntry& e : dir.entries) names.push_back(e.name);
  else
    names.push_back(FirstZipEntryName(read_at, file_size));  // Cut short: what it began with.
  bool torch = false, script = false, keras = false;
  for (const std::string& n : names) {
    const std::size_t slash = n.find('/');
    const std::string rest = slash == std::string::npos ? n : n.substr(slash + 1);
    if (rest == "data.pkl" || (slash != std::string::npos && rest.rfind("data/", 0) == 0)) torch = true;
    if (rest == "constants.pkl" || rest.rfind("code/", 0) == 0) script = true;
    if (n == "config.json" || n == "metadata.json" || n == "model.weights.h5") keras = true;
  }
  if (torch || script) return script ? FileFormat::kTorchScript : FileFormat::kTorchZip;
  return keras ? FileFormat::kKerasZip : FileFormat::kZip;
}

// A pickle whose first value is torch's magic number: PROTO and FRAME may come before it.
bool IsTorchLegacy(const std::vector<std::uint8_t>& head) {
  std::size_t at = 0;
  if (StartsWith(head, "\x80") && head.size() > 1) at = 2;
  if (head.size() > at && head[at] == 0x95) at += 9;
  return StartsWith(head, std::string_view(kTorchMagicLong1, 12), at) || StartsWith(head, kTorchMagicText, at);
}

std::size_t SkipSpace(const std::vector<std::uint8_t>& head) {
  std::size_t at = StartsWith(head, "\xef\xbb\xbf") ? 3 : 0;  // A UTF-8 byte order mark.
  while (at < head.size() && std::isspace(head[at])) ++at;
  return at;
}

bool IsHtml(const std::vector<std::uint8_t>& head) {
  const std::size_t at = SkipSpace(head);
  std::string start;
  for (std::size_t i = at; i < head.size() && start.size() < 15; ++i)
    start.push_back(static_cast<char>(std::tolower(head[i])));
  for (const char* tag : {"<!doctype html", "<html", "<head", "<body", "<!--", "<?xml"})
    if (start.rfind(tag, 0) == 0) return true;
  return false;
}

bool IsText(const std::vector<std::uint8_t>& head) {
  return !head.empty() && std::all_of(head.begin(), head.end(), [](std::uint8_t c) {
    return c == '\n' || c == '\r' || c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

}  // namespace

std::string_view FormatName(FileFormat format) {
  switch (format) {
    case FileFormat::kUnknown: return "unknown";
    case FileFormat::kHdf5: return "hdf5";
    case FileFormat::kKerasZip: return "keras_zip";
    case FileFormat::kTorchZip: return "torch_zip";
    case FileFormat::kTorchScript: return "torchscript";
    case FileFormat::kZip: return "zip";
    case FileFormat::kTorchLegacy: return "torch_legacy";
    case FileFormat::kSafetensors: return "safetensors";
    case FileFormat::kLfsPointer: return "lfs_pointer";
    case FileFormat::kHtml: return "html";
    case FileFormat::kShardIndex: return "sharded_index";
    case FileFormat::kJson: return "json";
    case FileFormat::kPickle: return "pickle";
    case FileFormat::kText: return "text";
  }
  return "unknown";
}

bool IsWeightFormat(FileFormat format) {
  switch (format) {
    case FileFormat::kHdf5:
    case FileFormat::kKerasZip:
    case FileFormat::kTorchZip:
    case FileFormat::kTorchScript:
    case FileFormat::kTorchLegacy:
    case FileFormat::kSafetensors:
      return true;
    default:
      return false;
  }
}

FileFormat DetectFormat(const ReadAt& read_at, std::uint64_t file_size, std::string_view name) {
  const std::vector<std::uint8_t> head = Head(read_at, file_size);
  if (StartsWith(head, std::string_view(kHdf5Signature, 8))) return FileFormat::kHdf5;
  // An HDF5 user block may hold anything, a zip included; h5py opens such a file as HDF5.
  if (NamedAsHdf5(name) && HasHdf5Signature(read_at, file_size)) return FileFormat::kHdf5;
  if (StartsWith(head, "PK\x03\x04") || StartsWith(head, "PK\x05\x06")) return ZipKind(read_at, file_size);
  if (LooksLikeSafetensors(head.data(), head.size())) return FileFormat::kSafetensors;
  if (IsTorchLegacy(head)) return FileFormat::kTorchLegacy;
  if (HasHdf5Signature(read_at, file_size)) return FileFormat::kHdf5;
  if (StartsWith(head, kLfsPointer)) return FileFormat::kLfsPointer;
  if (IsHtml(head)) return FileFormat::kHtml;
  const std::size_t at = SkipSpace(head);
  if (at < head.size() && (head[at] == '{' || head[at] == '[') && IsText(head)) {
    const std::string text(head.begin(), head.end());
    return text.find("\"weight_map\"") != std::string::npos ? FileFormat::kShardIndex : FileFormat::kJson;
  }
  if (head.size() >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5) return FileFormat::kPickle;
  if (IsText(head)) return FileFormat::kText;
  return FileFormat::kUnknown;
}

std::string NotWeightsReason(FileFormat format, const ReadAt& read_at, std::uint64_t file_size) {
  switch (format) {
    case FileFormat::kLfsPointer: {
      std::string size;
      const std::vector<std::uint8_t> head = Head(read_at, file_size);
      const std::string text(head.begin(), head.end());
      if (std::size_t at = text.find("\nsize "); at != std::string::npos)
        size = " of " + text.substr(at + 6, std::min<std::size_t>(20, text.find('\n', at + 6) - (at + 6))) + " bytes";
      return "a Git LFS pointer, not the weights: the real file" + size +
             " was never downloaded (git lfs pull); torch.load fails with \"invalid load key, 'v'\"";
    }
    case FileFormat::kHtml:
      return "an HTML page saved under a checkpoint name (a download that got an error or a confirmation "
             "page); torch.load fails with \"invalid load key, '<'\"";
    case FileFormat::kShardIndex:
      return "the index of a sharded checkpoint (weight_map), not weights: its shards are verified as "
             "files of their own";
    case FileFormat::kJson:
      return "a JSON document, not weights";
    case FileFormat::kPickle:
      return "a Python pickle without torch.save's magic number or archive: not a PyTorch checkpoint";
    case FileFormat::kText:
      return "a text file, not weights (a path, as git writes a symlink on a checkout without symlinks?)";
    case FileFormat::kZip:
      return "a zip archive that is neither a Keras 3 nor a PyTorch archive";
    default:
      return "no signature of a weight format ckptwatch knows (HDF5 at 0 or a user-block offset, a zip, "
             "safetensors, a torch pickle)";
  }
}

}  // namespace ckptwatch
