#include "verify/hdf5/hdf5_inspector.h"

#include <hdf5.h>
#include <hdf5_hl.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "verify/byte_reader.h"
#include "verify/hdf5/hdf5_direct_read.h"
#include "verify/hdf5/hdf5_fd_driver.h"
#include "verify/hdf5/hdf5_handle.h"
#include "verify/hdf5/loadable_datatype.h"
#include "verify/hdf5/read_plan.h"
#include "verify/keras/keras_classes.h"
#include "verify/load_check.h"
#include "verify/nonfinite_scan.h"

namespace ckptwatch {
namespace {

// Reads of one dataset go through this reused buffer, block by block, so a
// 10 GiB dataset never sits in memory.
constexpr std::size_t kReadBufferBytes = 8u << 20;
// A chunk larger than this is read in slices rather than growing the buffer.
constexpr std::size_t kMaxReadBufferBytes = 256u << 20;
// Attributes are read back whole; anything larger is not a Keras attribute and
// would only let a hostile file make us allocate.
constexpr hsize_t kMaxAttributeBytes = 64u << 20;
// H5Dget_chunk_info() is linear in the chunk index on 1.10 (and by-coordinate
// lookups cost 60-500 us each), so only the first chunks' addresses are
// checked at `structure`; `full` reads every chunk, and a file cut short is
// caught by its superblock's end-of-file address before either.
constexpr hsize_t kMaxChunksChecked = 1000;

struct Walk {
  const Hdf5Source* source = nullptr;
  Level level = Level::kStructure;
  Hdf5Inspection* out = nullptr;
  std::string object_path;    // the object being visited
  std::string failed_object;  // where an HDF5 error happened, for the reason
  // The error as it stood where it happened: once the callback returns, the
  // iteration pushes "iteration operator failed" on top of it.
  std::optional<Hdf5Error> error;
  std::vector<std::uint8_t> buffer;
  // The first dataset in visit order with a NaN/Inf, however it was read.
  std::uint64_t first_nonfinite_visit = UINT64_MAX;
  std::string first_nonfinite_dataset;
  LoadableDatatypes datatypes;
  // At kFull with direct reads: the datasets read after the walk, straight from the file.
  std::optional<DirectReads> direct;
  // At kFull: bytes libhdf5 has decoded so far, against out->decode_budget.
  std::uint64_t decoded = 0;
};

void NoteNonfinite(Walk& walk, std::uint64_t visit, const std::string& path, std::uint64_t count) {
  *walk.out->nonfinite += count;
  if (count > 0 && visit < walk.first_nonfinite_visit) {
    walk.first_nonfinite_visit = visit;
    walk.first_nonfinite_dataset = path;
  }
}

std::string Quote(const std::string& name) { return "'" + name + "'"; }

std::string ObjectPath(const char* name) {
  return (std::strcmp(name, ".") == 0) ? std::string("/") : "/" + std::string(name);
}

// Inside a visit callback: remember the error where it happened, then stop.
herr_t Stop(Walk& walk) {
  if (!walk.error) walk.error = TakeHdf5Error();
  return -1;
}

// Sets the verdict from the HDF5 error stack, unless one was already chosen.
void FailFromHdf5(Walk& walk, const std::string& what) {
  if (walk.out->verdict != Verdict::kOk) return;
  Hdf5Error error = walk.error ? *walk.error : TakeHdf5Error();
  walk.error.reset();
  walk.out->verdict = error.truncated ? Verdict::kTruncated : Verdict::kCorrupt;
  walk.out->reason = what + ": " + error.message;
  if (error.truncated) walk.out->reason += " (disk full or writer killed during save?)";
}

void Fail(Walk& walk, Verdict verdict, std::string reason) {
  if (walk.out->verdict != Verdict::kOk) return;
  walk.out->verdict = verdict;
  walk.out->reason = std::move(reason);
}

// Reads an attribute back whole so its heap and global-heap data are touched.
bool ReadAttribute(hid_t attr, hid_t file_type) {
  if (H5Aget_storage_size(attr) > kMaxAttributeBytes) return true;
  Hid space(H5Aget_space(attr), H5Sclose);
  if (!space.valid()) return false;
  hssize_t points = H5Sget_simple_extent_npoints(space.get());
  if (points < 0) return false;
  if (points == 0) return true;
  Hid mem_type(H5Tget_native_type(file_type, H5T_DIR_ASCEND), H5Tclose);
  // Some file types have no native equivalent (exotic floats, opaque); the
  // file type itself reads them without conversion.
  if (!mem_type.valid()) mem_type = Hid(H5Tcopy(file_type), H5Tclose);
  std::size_t size = H5Tget_size(mem_type.get());
  if (size == 0 || static_cast<hsize_t>(points) > kMaxAttributeBytes / size) return true;
  std::vector<std::uint8_t> data(static_cast<std::size_t>(points) * size);
  if (H5Aread(attr, mem_type.get(), data.data()) < 0) return false;
  if (H5Tdetect_class(mem_type.get(), H5T_VLEN) > 0 || H5Tis_variable_str(mem_type.get()) > 0)
    H5Dvlen_reclaim(mem_type.get(), space.get(), H5P_DEFAULT, data.data());
  return true;
}

herr_t VisitAttribute(hid_t location, const char* name, const H5A_info_t*, void* data) {
  Walk& walk = *static_cast<Walk*>(data);
  Hid attr(H5Aopen(location, name, H5P_DEFAULT), H5Aclose);
  Hid type(attr.valid() ? H5Aget_type(attr.get()) : H5I_INVALID_HID, H5Tclose);
  if (type.valid()) {
    // Before the read: libhdf5 1.10 converts from whatever bits a datatype names, even past
    // the value.
    if (std::optional<DatatypeProblem> problem = walk.datatypes.Check(type.get())) {
      Fail(walk, Verdict::kCorrupt,
           "attribute " + Quote(name) + " of " + Quote(walk.object_path) + " has " + problem->what +
               ": " + problem->why);
      return 1;
    }
  }
  if (!type.valid() || !ReadAttribute(attr.get(), type.get())) {
    walk.failed_object += " attribute " + Quote(name);
    return Stop(walk);
  }
  return 0;
}

// Raw data addresses must lie inside the file: HDF5 itself only notices a
// missing tail when a read reaches it, which `structure` never does. Where the
// data lies goes to `*storage` for a direct read.
bool CheckStorageInsideFile(Walk& walk, hid_t dataset, hid_t dcpl, const std::string& path,
                            RawStorage* storage) {
  const std::uint64_t file_size = walk.source->file_size;
  auto outside = [&](std::uint64_t end) {
    Fail(walk, Verdict::kTruncated,
         "dataset " + Quote(path) + " has data up to byte " + std::to_string(end) +
             " but the file ends at " + std::to_string(file_size) +
             ": truncated (disk full or writer killed during save?)");
    return false;
  };
  storage->layout = H5Pget_layout(dcpl);
  switch (storage->layout) {
    case H5D_CONTIGUOUS: {
      haddr_t offset = H5Dget_offset(dataset);  // absolute, includes the base
      if (offset == HADDR_UNDEF) return true;   // never written: fill value
      hsize_t size = H5Dget_storage_size(dataset);
      storage->offset = offset;
      storage->bytes = size;
      if (offset > file_size || size > file_size - offset) return outside(offset + size);
      return true;
    }
    case H5D_CHUNKED: {
      // 1.10.8 rejects H5S_ALL here: pass the dataset's own dataspace.
      Hid space(H5Dget_space(dataset), H5Sclose);
      hsize_t chunks = 0;
      if (H5Dget_num_chunks(dataset, space.get(), &chunks) < 0) {
        FailFromHdf5(walk, "cannot index the chunks of dataset " + Quote(path));
        return false;
      }
      const int rank = H5Sget_simple_extent_ndims(space.get());
      storage->all_chunks_listed =
          walk.direct.has_value() && rank > 0 && chunks <= kMaxChunksChecked;
      std::vector<hsize_t> coords(static_cast<std::size_t>(std::max(rank, 0)));
      for (hsize_t i = 0; i < std::min(chunks, kMaxChunksChecked); ++i) {
        unsigned filter_mask = 0;
        haddr_t address = HADDR_UNDEF;
        hsize_t size = 0;
        if (H5Dget_chunk_info(dataset, space.get(), i, coords.data(), &filter_mask, &address,
                              &size) < 0) {
          FailFromHdf5(walk, "cannot read chunk " + std::to_string(i) + " of dataset " + Quote(path));
          return false;
        }
        if (storage->all_chunks_listed) storage->chunks.push_back({coords, address, size});
        if (address == HADDR_UNDEF) continue;
        // Chunk addresses are relative to the superblock's base address.
        std::uint64_t start = walk.source->base_address + address;
        if (start < address || start > file_size || size > file_size - start)
          return outside(start + size);
      }
      return true;
    }
    default:
      return true;  // compact: the data lives in the object header
  }
}

// The raw data of a dataset with an external file list or a virtual layout
// lives in other files, named by the file's author. A privileged reader that
// followed them would read — and through the NaN count and the verdict,
// disclose — files the author could never read. Neither Keras nor
// torch/h5py checkpoints use them, so they are refused, never opened.
bool RefuseExternalStorage(Walk& walk, hid_t dcpl, const std::string& path) {
  const int external = H5Pget_external_count(dcpl);
  const bool is_virtual = H5Pget_layout(dcpl) == H5D_VIRTUAL;
  if (external == 0 && !is_virtual) return false;
  Fail(walk, Verdict::kExternalData,
       "dataset " + Quote(path) + " stores its data in another file (" +
           (is_virtual ? std::string("a virtual dataset") : "an external file list") +
           "): not followed; a checkpoint must hold its own weights, and reading another file "
           "would let the file's author read through ckptwatch what they cannot read themselves");
  return true;
}

// Reads every element of `dataset` (the `visit`-th) block by block through
// libhdf5 and counts non-finite floats.
bool ReadAllData(Walk& walk, hid_t dataset, const std::string& path, std::uint64_t visit) {
  Hid file_type(H5Dget_type(dataset), H5Tclose);
  Hid file_space(H5Dget_space(dataset), H5Sclose);
  Hid dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (!file_type.valid() || !file_space.valid() || !dcpl.valid()) return false;
  if (H5Sget_simple_extent_type(file_space.get()) == H5S_NULL) return true;
  int rank = H5Sget_simple_extent_ndims(file_space.get());
  if (rank < 0) return false;
  std::vector<hsize_t> dims(rank), chunk(rank, 1);
  H5Sget_simple_extent_dims(file_space.get(), dims.data(), nullptr);
  const hssize_t points = H5Sget_simple_extent_npoints(file_space.get());
  if (points == 0) return true;
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) H5Pget_chunk(dcpl.get(), rank, chunk.data());

  const H5T_class_t type_class = H5Tget_class(file_type.get());
  Hid mem_type;
  bool variable_length = false;
  if (type_class == H5T_FLOAT) {
    // Same layout as the file, native byte order: no conversion for
    // little-endian data, so the read is a plain copy.
    mem_type = Hid(H5Tcopy(file_type.get()), H5Tclose);
    H5Tset_order(mem_type.get(), H5T_ORDER_LE);
  } else if (H5Tdetect_class(file_type.get(), H5T_VLEN) > 0 ||
             H5Tis_variable_str(file_type.get()) > 0) {
    mem_type = Hid(H5Tget_native_type(file_type.get(), H5T_DIR_ASCEND), H5Tclose);
    variable_length = true;
  } else {
    mem_type = Hid(H5Tcopy(file_type.get()), H5Tclose);
  }
  if (!mem_type.valid()) return false;
  const std::size_t element_size = H5Tget_size(mem_type.get());
  if (element_size == 0) return false;
  // What decoding this dataset costs is its logical size, not its storage:
  // past the budget its values are left unread (the verdict says so).
  const std::uint64_t logical = static_cast<std::uint64_t>(std::max<hssize_t>(points, 0)) * element_size;
  if (logical > walk.out->decode_budget - std::min(walk.decoded, walk.out->decode_budget)) {
    ++walk.out->full_skipped_datasets;
    walk.out->full_skipped_bytes += logical;
    return true;
  }
  walk.decoded += logical;

  std::optional<FloatLayout> float_layout;
  if (type_class == H5T_FLOAT) float_layout = FloatLayoutOfType(mem_type.get());

  ReadPlan plan({dims.begin(), dims.end()}, {chunk.begin(), chunk.end()}, element_size,
                kReadBufferBytes, kMaxReadBufferBytes);
  if (walk.buffer.size() < plan.buffer_bytes()) walk.buffer.resize(plan.buffer_bytes());

  std::vector<hsize_t> start, count;
  std::uint64_t nonfinite = 0;
  while (plan.Next(&start, &count)) {
    hsize_t elements = 1;
    for (hsize_t c : count) elements *= c;
    // A scalar dataset is read whole; hyperslabs need rank >= 1.
    Hid mem_space(rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, count.data(), nullptr),
                  H5Sclose);
    if ((rank > 0 && H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr,
                                         count.data(), nullptr) < 0) ||
        H5Dread(dataset, mem_type.get(), mem_space.get(), file_space.get(), H5P_DEFAULT,
                walk.buffer.data()) < 0) {
      std::string where = " at element offset (";
      for (std::size_t i = 0; i < start.size(); ++i) where += (i ? "," : "") + std::to_string(start[i]);
      walk.failed_object = "dataset " + Quote(path) + where + ")";
      Stop(walk);
      return false;
    }
    if (float_layout)
      nonfinite += CountNonfinite(*float_layout, walk.buffer.data(), static_cast<std::size_t>(elements));
    if (variable_length)
      H5Dvlen_reclaim(mem_type.get(), mem_space.get(), H5P_DEFAULT, walk.buffer.data());
  }
  NoteNonfinite(walk, visit, path, nonfinite);
  return true;
}

// A dataspace whose current size exceeds its maximum, or whose element count
// disagrees with its dimensions, is damaged metadata (h5dump crashes on one).
bool CheckDataspace(Walk& walk, hid_t space, const std::string& path) {
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) return false;
  std::vector<hsize_t> dims(rank), max_dims(rank);
  if (H5Sget_simple_extent_dims(space, dims.data(), max_dims.data()) < 0) return false;
  hsize_t product = 1;
  bool overflow = false;
  for (int d = 0; d < rank; ++d) {
    if (max_dims[d] != H5S_UNLIMITED && max_dims[d] < dims[d]) {
      Fail(walk, Verdict::kCorrupt,
           "dataset " + Quote(path) + " has dimension " + std::to_string(d) + " of size " +
               std::to_string(dims[d]) + " above its maximum " + std::to_string(max_dims[d]) +
               ": the dataspace metadata is corrupt");
      return false;
    }
    overflow = overflow || (dims[d] != 0 && product > ~hsize_t{0} / dims[d]);
    product *= dims[d];
  }
  hssize_t points = H5Sget_simple_extent_npoints(space);
  if (overflow || (H5Sget_simple_extent_type(space) == H5S_SIMPLE && points >= 0 &&
                   static_cast<hsize_t>(points) != product)) {
    Fail(walk, Verdict::kCorrupt,
         "dataset " + Quote(path) + " has a dataspace whose element count does not match its "
         "dimensions: the dataspace metadata is corrupt");
    return false;
  }
  return true;
}

// Soft and external links are not objects, so the object visit skips them;
// an empty target is not something any writer produces. External links are
// never followed: they point outside the checkpoint.
herr_t VisitLink(hid_t group, const char* name, const H5L_info_t* info, void* data) {
  Walk& walk = *static_cast<Walk*>(data);
  if (info->type != H5L_TYPE_SOFT && info->type != H5L_TYPE_EXTERNAL) return 0;
  if (info->type == H5L_TYPE_EXTERNAL) {
    char group_name[1024] = "";
    H5Iget_name(group, group_name, sizeof group_name);
    std::string where = group_name;
    if (where.empty() || where.back() != '/') where += '/';
    Fail(walk, Verdict::kExternalData,
         "link " + Quote(where + name) + " is an external link: it stores its data in another "
         "file; not followed (a checkpoint must hold its own weights)");
    return 1;
  }
  if (info->u.val_size == 0 || info->u.val_size > (1u << 16)) {
    Fail(walk, Verdict::kCorrupt, "link " + Quote(name) + " has an invalid target: the group's link "
                                  "metadata is corrupt");
    return 1;
  }
  std::vector<char> target(info->u.val_size + 1, '\0');
  if (H5Lget_val(group, name, target.data(), target.size(), H5P_DEFAULT) < 0) {
    walk.failed_object += " link " + Quote(name);
    return Stop(walk);
  }
  if (info->type == H5L_TYPE_SOFT && target[0] == '\0') {
    Fail(walk, Verdict::kCorrupt, "soft link " + Quote(name) + " has an empty target: the group's "
                                  "link metadata is corrupt");
    return 1;
  }
  return 0;
}

herr_t VisitObject(hid_t root, const char* name, const H5O_info_t* info, void* data) {
  Walk& walk = *static_cast<Walk*>(data);
  const std::string path = ObjectPath(name);
  walk.object_path = path;
  walk.failed_object = "object " + Quote(path);
  Hid object(H5Oopen(root, name, H5P_DEFAULT), H5Oclose);
  if (!object.valid()) return Stop(walk);
  if (info->num_attrs > 0 &&
      H5Aiterate2(object.get(), H5_INDEX_NAME, H5_ITER_NATIVE, nullptr, VisitAttribute, &walk) < 0)
    return Stop(walk);
  if (walk.out->verdict != Verdict::kOk) return 1;
  if (info->type == H5O_TYPE_GROUP) {
    // Group creation properties hold the link storage and filter messages;
    // a damaged one makes h5py fail on the group.
    Hid gcpl(H5Gget_create_plist(object.get()), H5Pclose);
    H5G_info_t group_info;
    if (!gcpl.valid() || H5Gget_info(object.get(), &group_info) < 0) return Stop(walk);
    hsize_t index = 0;
    herr_t links = H5Literate(object.get(), H5_INDEX_NAME, H5_ITER_NATIVE, &index, VisitLink, &walk);
    if (walk.out->verdict != Verdict::kOk) return 1;
    if (links < 0) return Stop(walk);
  }
  if (info->type != H5O_TYPE_DATASET) return 0;

  const std::uint64_t visit = walk.out->datasets++;
  Hid space(H5Dget_space(object.get()), H5Sclose);
  Hid dcpl(H5Dget_create_plist(object.get()), H5Pclose);
  if (!space.valid() || !dcpl.valid()) return Stop(walk);
  if (!CheckDataspace(walk, space.get(), path)) return walk.out->verdict != Verdict::kOk ? 1 : Stop(walk);
  hssize_t points = H5Sget_simple_extent_npoints(space.get());
  if (points < 0) return Stop(walk);
  walk.out->parameters += static_cast<std::uint64_t>(points);
  if (RefuseExternalStorage(walk, dcpl.get(), path)) return 1;
  RawStorage storage;
  if (!CheckStorageInsideFile(walk, object.get(), dcpl.get(), path, &storage)) return 1;
  Hid type(H5Dget_type(object.get()), H5Tclose);
  if (!type.valid()) return Stop(walk);
  if (std::optional<DatatypeProblem> problem = walk.datatypes.Check(type.get())) {
    Fail(walk, Verdict::kCorrupt,
         "dataset " + Quote(path) + " has " + problem->what + ": " + problem->why);
    return 1;
  }
  if (walk.level != Level::kFull) return 0;
  if (walk.direct && walk.direct->Plan(object.get(), dcpl.get(), storage, visit, path)) return 0;
  if (!ReadAllData(walk, object.get(), path, visit)) return Stop(walk);
  return 0;
}

// After the walk: reads the datasets it planned straight from the file. One
// whose read failed is read again by libhdf5, whose error is the verdict, as
// if the walk had read it.
void ReadDirectly(Walk& walk, hid_t file) {
  const Hdf5Source& source = *walk.source;
  const ReadAt read_at = source.image.empty() ? FdReadAt(source.fd) : SpanReadAt(source.image);
  for (const DirectReads::Dataset& dataset : walk.direct->Read(read_at)) {
    if (!dataset.read_failed) {
      ++walk.out->direct_datasets;
      NoteNonfinite(walk, dataset.visit, dataset.path, dataset.nonfinite);
      continue;
    }
    walk.failed_object = "object " + Quote(dataset.path);
    Hid object(H5Dopen2(file, dataset.path.c_str(), H5P_DEFAULT), H5Dclose);
    if (!object.valid() || !ReadAllData(walk, object.get(), dataset.path, dataset.visit)) {
      FailFromHdf5(walk, "libhdf5 cannot read " + walk.failed_object);
      return;
    }
  }
}

// ---- Keras layout -------------------------------------------------------

// Reads a string attribute (scalar or 1-D; fixed or variable length). An
// empty numeric array counts as an empty list: Keras writes np.array([]) for
// layers without weights. Returns false when the attribute is absent.
bool ReadStringAttribute(hid_t object, const std::string& name, std::vector<std::string>* out,
                         bool* malformed) {
  if (H5Aexists(object, name.c_str()) <= 0) return false;
  Hid attr(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  Hid type(H5Aget_type(attr.get()), H5Tclose);
  Hid space(H5Aget_space(attr.get()), H5Sclose);
  hssize_t points = space.valid() ? H5Sget_simple_extent_npoints(space.get()) : -1;
  if (!attr.valid() || !type.valid() || points < 0) {
    *malformed = true;
    return true;
  }
  if (points == 0) return true;
  if (H5Tget_class(type.get()) != H5T_STRING || H5Aget_storage_size(attr.get()) > kMaxAttributeBytes) {
    *malformed = true;
    return true;
  }
  if (H5Tis_variable_str(type.get()) > 0) {
    Hid mem_type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem_type.get(), H5T_VARIABLE);
    H5Tset_cset(mem_type.get(), H5Tget_cset(type.get()));
    std::vector<char*> strings(static_cast<std::size_t>(points), nullptr);
    if (H5Aread(attr.get(), mem_type.get(), strings.data()) < 0) {
      *malformed = true;
      return true;
    }
    for (char* s : strings) out->emplace_back(s ? s : "");
    H5Dvlen_reclaim(mem_type.get(), space.get(), H5P_DEFAULT, strings.data());
    return true;
  }
  std::size_t size = H5Tget_size(type.get());
  if (size == 0) return true;
  Hid mem_type(H5Tcopy(type.get()), H5Tclose);
  std::vector<char> raw(static_cast<std::size_t>(points) * size);
  if (H5Aread(attr.get(), mem_type.get(), raw.data()) < 0) {
    *malformed = true;
    return true;
  }
  for (hssize_t i = 0; i < points; ++i) {
    const char* s = raw.data() + i * size;
    out->emplace_back(s, strnlen(s, size));
  }
  return true;
}

// Keras splits attributes too large for an object header into name0, name1, …
bool ReadKerasList(hid_t object, const std::string& name, std::vector<std::string>* out,
                   bool* malformed) {
  if (ReadStringAttribute(object, name, out, malformed)) return true;
  bool found = false;
  for (int i = 0; ReadStringAttribute(object, name + std::to_string(i), out, malformed); ++i)
    found = true;
  return found;
}

std::string ReadScalarString(hid_t object, const char* name, bool* malformed) {
  std::vector<std::string> values;
  if (!ReadStringAttribute(object, name, &values, malformed) || values.empty()) return "";
  return values.front();
}

bool LinkPathExists(hid_t location, const std::string& path) {
  // H5Lexists fails, rather than returning false, when an intermediate group
  // is missing: check each prefix.
  std::size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (H5Lexists(location, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

bool HasGroup(hid_t location, const char* name) {
  if (H5Lexists(location, name, H5P_DEFAULT) <= 0) return false;
  H5O_info_t info;
  return H5Oget_info_by_name2(location, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 &&
         info.type == H5O_TYPE_GROUP;
}

// Keras writes layer_names first, then each layer's group in that order. A
// writer that flushed after each layer and was then killed leaves a readable
// file holding the first layers and none of the rest: a save cut short
// (truncated), not damaged storage (corrupt). A gap with later layers present
// is not that, and stays corrupt.
bool OnlyTailMissing(hid_t weights_root, const std::vector<std::string>& layers,
                     std::size_t first_missing) {
  for (std::size_t i = first_missing + 1; i < layers.size(); ++i)
    if (LinkPathExists(weights_root, layers[i])) return false;
  return true;
}

// Checks layer_names ↔ groups and weight_names ↔ datasets, the way
// load_weights() walks them: a missing entry makes load_model fail.
void CheckKerasWeights(Walk& walk, hid_t weights_root, const std::vector<std::string>& layers,
                       const std::string& root_name) {
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string& layer = layers[i];
    if (!LinkPathExists(weights_root, layer)) {
      if (OnlyTailMissing(weights_root, layers, i)) {
        Fail(walk, Verdict::kTruncated,
             "Keras layer_names lists " + std::to_string(layers.size()) + " layers but " +
                 root_name + " holds only the first " + std::to_string(i) + " (none from " +
                 Quote(layer) +
                 " on): the save stopped partway (writer killed or crashed after a flush?)");
        return;
      }
      Fail(walk, Verdict::kCorrupt,
           "Keras layer_names lists " + Quote(layer) + " but " + root_name +
               " has no such group: load_model/load_weights will fail");
      return;
    }
    Hid group(H5Gopen2(weights_root, layer.c_str(), H5P_DEFAULT), H5Gclose);
    if (!group.valid()) continue;  // the walk already judged unreadable objects
    std::vector<std::string> weights;
    bool malformed = false;
    ReadKerasList(group.get(), "weight_names", &weights, &malformed);
    if (malformed) {
      Fail(walk, Verdict::kCorrupt,
           "layer " + Quote(layer) + " has an unreadable weight_names attribute: load_model will fail");
      return;
    }
    for (const std::string& weight : weights) {
      if (!LinkPathExists(group.get(), weight)) {
        Fail(walk, Verdict::kCorrupt,
             "layer " + Quote(layer) + " lists weight " + Quote(weight) +
                 " but no such dataset exists: load_model/load_weights will fail");
        return;
      }
    }
  }
}

void InspectKeras(Walk& walk, hid_t file) {
  KerasInfo& keras = walk.out->keras;
  bool malformed = false;
  keras.version = ReadScalarString(file, "keras_version", &malformed);
  keras.backend = ReadScalarString(file, "backend", &malformed);
  const std::string model_config = ReadScalarString(file, "model_config", &malformed);
  const std::string training_config = ReadScalarString(file, "training_config", &malformed);
  std::vector<std::string> layers;

  if (!model_config.empty() || HasGroup(file, "model_weights")) {
    keras.kind = "full_model";
    if (!HasGroup(file, "model_weights")) {
      Fail(walk, Verdict::kCorrupt,
           "model_config is present but the model_weights group is missing: load_model will fail");
      return;
    }
    Hid weights(H5Gopen2(file, "model_weights", H5P_DEFAULT), H5Gclose);
    if (!weights.valid()) return;
    if (keras.version.empty()) keras.version = ReadScalarString(weights.get(), "keras_version", &malformed);
    if (keras.backend.empty()) keras.backend = ReadScalarString(weights.get(), "backend", &malformed);
    if (ReadKerasList(weights.get(), "layer_names", &layers, &malformed))
      CheckKerasWeights(walk, weights.get(), layers, "model_weights");
  } else if (ReadKerasList(file, "layer_names", &layers, &malformed)) {
    keras.kind = "weights_only";
    CheckKerasWeights(walk, file, layers, "the file");
  } else if (HasGroup(file, "layers") && keras.version.empty()) {
    keras.kind = "keras3";  // model.save_weights("*.weights.h5"): layers/<name>/vars/<i>
  } else {
    keras.version.clear();  // an HDF5 file that is not a Keras checkpoint
    keras.backend.clear();
    return;
  }
  if (malformed) {
    Fail(walk, Verdict::kCorrupt, "a Keras attribute (layer_names, model_config, …) is unreadable");
    return;
  }
  if (model_config.empty()) return;

  nlohmann::json config = nlohmann::json::parse(model_config, nullptr, false);
  if (config.is_discarded()) {
    Fail(walk, Verdict::kCorrupt, "the model_config attribute is not valid JSON: load_model will fail");
    return;
  }
  nlohmann::json training = nlohmann::json::parse(training_config, nullptr, false);
  keras.custom_classes = FindCustomClasses(config, training.is_discarded() ? nullptr : &training);
  CollectKerasLoadFacts(config, training.is_discarded() ? nullptr : &training, &keras);
}

Hid OpenFile(const Hdf5Source& source) {
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // A reader holding the default lock makes a Keras save (h5py.File(p, "w"))
  // fail with "unable to lock file, errno = 11" and truncate the checkpoint.
  H5Pset_file_locking(fapl.get(), false, true);
  // A chunk cache large enough that chunk-aligned blocks decompress each
  // chunk once.
  H5Pset_cache(fapl.get(), 0, 12421, 32u << 20, 1.0);
  if (!source.image.empty()) {
    H5Pset_fapl_core(fapl.get(), 1 << 20, false);
    // The image is borrowed read-only; HDF5's file-image callbacks would copy
    // it, H5LTopen_file_image with DONT_COPY does not.
    return Hid(H5LTopen_file_image(const_cast<std::uint8_t*>(source.image.data()), source.image.size(),
                                   H5LT_FILE_IMAGE_DONT_COPY | H5LT_FILE_IMAGE_DONT_RELEASE),
               H5Fclose);
  }
  if (!SetFdDriver(fapl.get(), source.fd)) return Hid();
  return Hid(H5Fopen(source.name.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
}

std::uint64_t files_inspected = 0;

}  // namespace

std::uint64_t Hdf5FilesInspected() { return files_inspected; }

Hdf5Inspection InspectHdf5(const Hdf5Source& source, Level level) {
  ++files_inspected;
  InitHdf5ErrorHandling();
  Hdf5Inspection result;
  if (level == Level::kFull) result.nonfinite = 0;
  result.decode_budget = DecodeBudget(source.file_size);
  Walk walk;
  walk.source = &source;
  walk.level = level;
  walk.out = &result;

  Hid file = OpenFile(source);
  if (!file.valid()) {
    FailFromHdf5(walk, "libhdf5 cannot open the file");
    return result;
  }
  // Direct reads stop where libhdf5's reads would fail (its end of allocation)
  // or return zeros (the end of the file): storage past either is left to it.
  if (level == Level::kFull && source.direct_reads && source.end_of_allocation)
    walk.direct.emplace(std::min(source.file_size, *source.end_of_allocation), source.base_address);
  if (H5Ovisit2(file.get(), H5_INDEX_NAME, H5_ITER_NATIVE, VisitObject, &walk,
                H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS) < 0) {
    FailFromHdf5(walk, "libhdf5 cannot read " + walk.failed_object);
    return result;
  }
  if (result.verdict != Verdict::kOk) return result;
  if (walk.direct) {
    ReadDirectly(walk, file.get());
    if (result.verdict != Verdict::kOk) return result;
  }
  InspectKeras(walk, file.get());
  // Closing flushes and checks the metadata cache: a file whose cache entries
  // cannot be released (pinned entries, bad sizes) fails here.
  if (H5Fclose(file.release()) < 0) {
    FailFromHdf5(walk, "libhdf5 cannot close the file cleanly");
    return result;
  }
  if (result.verdict == Verdict::kOk && result.nonfinite.value_or(0) > 0) {
    result.verdict = Verdict::kNonfinite;
    result.reason = std::to_string(*result.nonfinite) + " NaN/Inf values, first in dataset " +
                    Quote(walk.first_nonfinite_dataset) +
                    ": training diverged before this save; resume from an earlier checkpoint";
  }
  return result;
}

std::uint64_t DecodeBudget(std::uint64_t file_size) {
  constexpr std::uint64_t kFloor = std::uint64_t{256} << 20;
  return std::max(kFloor, file_size > UINT64_MAX / 4 ? UINT64_MAX : file_size * 4);
}

std::string Hdf5LibraryVersion() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

}  // namespace ckptwatch
