#include "verify/hdf5/superblock.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <system_error>

#include "verify/hdf5/lookup3.h"

namespace ckptwatch {
namespace {

constexpr std::array<std::uint8_t, 8> kSignature = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
constexpr std::size_t kSignatureSize = kSignature.size();
constexpr std::size_t kFixedSize = kSignatureSize + 1;  // Signature and version byte.
// The largest superblock libhdf5 accepts is v1 with 32-byte offsets and lengths:
// 52 + 5 * 32 + 32 = 244 bytes. One read of this many bytes always covers it.
constexpr std::size_t kMaxSuperblockSize = 256;
constexpr std::uint64_t kFirstUserBlockSize = 512;

// H5Fpkg.h: the only status flags libhdf5 knows; any other bit makes it refuse the file.
constexpr std::uint32_t kWriteAccess = 0x01;
constexpr std::uint32_t kSwmrWriteAccess = 0x04;
constexpr std::uint32_t kAllFlags = 0x07;

constexpr std::uint64_t kUndefined = Superblock::kUndefinedAddress;

constexpr char kTruncatedCause[] = ": truncated (disk full or writer killed during save?)";

enum class Parsed { kOk, kShort, kMalformed };

bool IsValidFieldSize(int n) { return n == 2 || n == 4 || n == 8 || n == 16 || n == 32; }

// Superblock bytes from the signature through the last field (H5Fpkg.h,
// H5F_SUPERBLOCK_VARLEN_SIZE). v0/v1: 15 bytes of versions, sizes, K values and
// flags (v1: 4 more), four addresses, then the root group symbol table entry:
// name offset (a length), object header address, cache type, reserved, 16-byte
// scratch pad. v2/v3: sizes and flags, four addresses, checksum.
std::size_t SuperblockSize(int version, int sizeof_offsets, int sizeof_lengths) {
  const std::size_t a = static_cast<std::size_t>(sizeof_offsets);
  const std::size_t s = static_cast<std::size_t>(sizeof_lengths);
  if (version >= 2) return kFixedSize + 3 + 4 * a + 4;
  const std::size_t root_entry = s + a + 4 + 4 + 16;
  return kFixedSize + 15 + (version == 1 ? 4 : 0) + 4 * a + root_entry;
}

// Little-endian reads over a span. Reading past the end yields zeros and marks the
// cursor bad rather than touching memory it does not own.
class Cursor {
 public:
  Cursor(std::span<const std::uint8_t> bytes, std::size_t pos) : bytes_(bytes), pos_(pos) {}

  std::uint64_t Uint(std::size_t width) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < width; ++i) {
      const std::uint64_t byte = Byte();
      if (i < 8) v |= byte << (8 * i);
    }
    return v;
  }
  std::uint8_t Byte() {
    if (pos_ >= bytes_.size()) {
      ok_ = false;
      return 0;
    }
    return bytes_[pos_++];
  }
  void Skip(std::size_t n) {
    if (n > bytes_.size() - std::min(pos_, bytes_.size())) ok_ = false;
    pos_ += n;
  }
  // As H5F_addr_decode: all-0xff bytes mean "undefined". libhdf5 silently drops the
  // bytes of a 16- or 32-byte address beyond the eighth; a value that does not fit in
  // 64 bits is corruption, so report it instead (false).
  bool Address(std::size_t width, std::uint64_t* out) {
    std::uint64_t v = 0;
    bool all_ones = true;
    bool fits = true;
    for (std::size_t i = 0; i < width; ++i) {
      const std::uint8_t c = Byte();
      if (c != 0xff) all_ones = false;
      if (i < 8) {
        v |= std::uint64_t{c} << (8 * i);
      } else if (c != 0) {
        fits = false;
      }
    }
    *out = all_ones ? kUndefined : v;
    return all_ones || fits;
  }
  bool ok() const { return ok_; }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_;
  bool ok_ = true;
};

std::string Hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, v);
  return buf;
}

std::string AddressText(std::uint64_t addr) {
  return addr == kUndefined ? std::string("undefined") : std::to_string(addr);
}

Parsed Malformed(std::string* err, const std::string& what) {
  *err = what + ": the superblock is corrupt";
  return Parsed::kMalformed;
}

// Field checks follow H5F__cache_superblock_deserialize (libhdf5 1.10): what it
// refuses is kMalformed here, in the order it checks (sizes, checksum, fields).
Parsed ParseFields(std::span<const std::uint8_t> bytes, std::uint64_t signature_offset,
                   Superblock* out, std::string* err) {
  if (bytes.size() < kFixedSize) {
    *err = "the HDF5 superblock needs more than the " + std::to_string(bytes.size()) +
           " bytes that are there";
    return Parsed::kShort;
  }
  if (!std::equal(kSignature.begin(), kSignature.end(), bytes.begin())) {
    return Malformed(err, "no HDF5 signature where the superblock should start");
  }
  Superblock sb;
  sb.signature_offset = signature_offset;
  sb.version = bytes[kSignatureSize];
  if (sb.version > 3) {
    *err = "HDF5 superblock version " + std::to_string(sb.version) +
           " is unknown (libhdf5 1.10 reads versions 0-3): the superblock is corrupt";
    return Parsed::kMalformed;
  }
  const std::size_t sizes_at = sb.version < 2 ? kFixedSize + 4 : kFixedSize;
  if (bytes.size() < sizes_at + 2) {
    *err = "the HDF5 superblock needs more than the " + std::to_string(bytes.size()) +
           " bytes that are there";
    return Parsed::kShort;
  }
  sb.sizeof_offsets = bytes[sizes_at];
  sb.sizeof_lengths = bytes[sizes_at + 1];
  if (!IsValidFieldSize(sb.sizeof_offsets)) {
    return Malformed(err, "HDF5 superblock says offsets are " + std::to_string(sb.sizeof_offsets) +
                              " bytes (libhdf5 accepts 2, 4, 8, 16 or 32)");
  }
  if (!IsValidFieldSize(sb.sizeof_lengths)) {
    return Malformed(err, "HDF5 superblock says lengths are " + std::to_string(sb.sizeof_lengths) +
                              " bytes (libhdf5 accepts 2, 4, 8, 16 or 32)");
  }
  const std::size_t size = SuperblockSize(sb.version, sb.sizeof_offsets, sb.sizeof_lengths);
  if (bytes.size() < size) {
    *err = "the version " + std::to_string(sb.version) + " HDF5 superblock needs " +
           std::to_string(size) + " bytes but only " + std::to_string(bytes.size()) + " are there";
    return Parsed::kShort;
  }
  bytes = bytes.first(size);

  if (sb.version >= 2) {
    Cursor stored_at(bytes, size - 4);
    const auto stored = static_cast<std::uint32_t>(stored_at.Uint(4));
    const std::uint32_t computed = Lookup3(bytes.first(size - 4));
    if (stored != computed) {
      return Malformed(err, "HDF5 superblock checksum mismatch (stored " + Hex32(stored) +
                                ", computed " + Hex32(computed) + ")");
    }
  }

  const auto a = static_cast<std::size_t>(sb.sizeof_offsets);
  bool addresses_fit = true;
  std::uint64_t unused_address = 0;
  Cursor c(bytes, kFixedSize);
  if (sb.version < 2) {
    // Format versions that libhdf5 hard-wires to 0.
    const int free_space_version = c.Byte();
    const int root_entry_version = c.Byte();
    c.Skip(1);
    const int shared_header_version = c.Byte();
    c.Skip(3);  // Sizes (already read) and a reserved byte.
    const std::uint64_t leaf_k = c.Uint(2);
    const std::uint64_t internal_k = c.Uint(2);
    sb.consistency_flags = static_cast<std::uint32_t>(c.Uint(4));
    if (sb.version == 1) c.Skip(4);  // Indexed storage K and two reserved bytes.
    addresses_fit &= c.Address(a, &sb.base_address);
    addresses_fit &= c.Address(a, &unused_address);  // Free-space info: never used.
    addresses_fit &= c.Address(a, &sb.eof_address);
    addresses_fit &= c.Address(a, &unused_address);       // Driver information block.
    c.Skip(static_cast<std::size_t>(sb.sizeof_lengths));  // Root entry: link name offset.
    addresses_fit &= c.Address(a, &sb.root_address);
    const std::uint64_t cache_type = c.Uint(4);

    if (free_space_version != 0) {
      return Malformed(err, "HDF5 superblock free-space version is " +
                                std::to_string(free_space_version) + " (must be 0)");
    }
    if (root_entry_version != 0) {
      return Malformed(err, "HDF5 superblock root group symbol table entry version is " +
                                std::to_string(root_entry_version) + " (must be 0)");
    }
    if (shared_header_version != 0) {
      return Malformed(err, "HDF5 superblock shared header version is " +
                                std::to_string(shared_header_version) + " (must be 0)");
    }
    if (leaf_k == 0 || internal_k == 0) {
      return Malformed(err, "HDF5 superblock has a zero group B-tree K value");
    }
    // libhdf5 keeps only the low byte of the 4-byte field before checking it.
    if ((sb.consistency_flags & 0xff & ~kAllFlags) != 0) {
      return Malformed(err,
                       "HDF5 superblock has unknown status flags " + Hex32(sb.consistency_flags));
    }
    // H5G_ent_decode knows three cache types: nothing, symbol table, symbolic link.
    if (cache_type > 2) {
      return Malformed(err, "HDF5 superblock root group entry has unknown cache type " +
                                std::to_string(cache_type));
    }
  } else {
    c.Skip(2);  // Sizes, already read.
    sb.consistency_flags = c.Byte();
    addresses_fit &= c.Address(a, &sb.base_address);
    addresses_fit &= c.Address(a, &unused_address);  // Superblock extension.
    addresses_fit &= c.Address(a, &sb.eof_address);
    addresses_fit &= c.Address(a, &sb.root_address);
    if ((sb.consistency_flags & ~kAllFlags) != 0) {
      return Malformed(
          err, "HDF5 superblock has unknown file consistency flags " + Hex32(sb.consistency_flags));
    }
  }
  if (!c.ok()) return Malformed(err, "HDF5 superblock fields run past its end");
  if (!addresses_fit) return Malformed(err, "HDF5 superblock has an address wider than 64 bits");
  *out = sb;
  return Parsed::kOk;
}

struct ReadOutcome {
  std::size_t got = 0;
  int error = 0;  // errno of a failed read; 0 when the read succeeded (possibly short).
};

// Calls `read_at` until `n` bytes arrive, end of file, or an error other than EINTR.
ReadOutcome ReadFully(const ReadAt& read_at, std::uint64_t offset, std::uint8_t* buf,
                      std::size_t n) {
  ReadOutcome out;
  while (out.got < n) {
    errno = 0;
    const long r = read_at(offset + out.got, buf + out.got, n - out.got);
    if (r < 0) {
      if (errno == EINTR) continue;
      out.error = errno != 0 ? errno : EIO;
      return out;
    }
    if (r == 0) break;
    if (static_cast<unsigned long>(r) > n - out.got) {
      out.error = EIO;  // A reader claiming more than asked for cannot be trusted.
      return out;
    }
    out.got += static_cast<std::size_t>(r);
  }
  return out;
}

HeaderCheck Verdicted(Verdict verdict, std::string reason) {
  HeaderCheck check;
  check.verdict = verdict;
  check.reason = std::move(reason);
  return check;
}

HeaderCheck ReadFailed(int error, std::uint64_t offset, std::size_t n) {
  const std::string message = std::generic_category().message(error);
  if (error == EACCES || error == EPERM) {
    return Verdicted(Verdict::kPermissionDenied,
                     "cannot read the file: " + message +
                         " (check its permissions and the user ckptwatch runs as)");
  }
  return Verdicted(Verdict::kCorrupt, "cannot read bytes " + std::to_string(offset) + "-" +
                                          std::to_string(offset + n - 1) + " of the file: " +
                                          message + " (disk or filesystem error?)");
}

// The caller's size came from stat; a read ending earlier means the file shrank.
HeaderCheck Shrank(std::uint64_t file_size, std::uint64_t data_end) {
  return Verdicted(Verdict::kInProgress,
                   "file shrank while its header was being read (" + std::to_string(file_size) +
                       " bytes, then data ended at " + std::to_string(data_end) +
                       "): something is rewriting it");
}

// libhdf5 1.10 sets bit 0 of v0-v2 superblocks too while a writer has the file open, but
// only refuses v3 files for it; for older versions it is a hint, not a verdict.
std::string WriterHint(const Superblock& sb) {
  if (sb.version < 3 && (sb.consistency_flags & kWriteAccess) != 0) {
    return " (its superblock also says a writer had it open)";
  }
  return "";
}

}  // namespace

bool Superblock::open_for_write() const {
  return version >= 3 && (consistency_flags & kWriteAccess) != 0;
}

bool Superblock::swmr_write() const {
  return version >= 3 && (consistency_flags & kSwmrWriteAccess) != 0;
}

std::optional<std::uint64_t> Superblock::ExpectedFileSize() const {
  if (eof_address == kUndefined) return std::nullopt;
  // eof_address + signature_offset - base_address, without wrapping either way.
  if (eof_address >= base_address) {
    const std::uint64_t relative = eof_address - base_address;
    if (relative > std::numeric_limits<std::uint64_t>::max() - signature_offset) {
      return std::nullopt;
    }
    return relative + signature_offset;
  }
  const std::uint64_t deficit = base_address - eof_address;
  if (deficit > signature_offset) return std::nullopt;
  return signature_offset - deficit;
}

bool ParseSuperblock(std::span<const std::uint8_t> bytes, std::uint64_t signature_offset,
                     Superblock* out, std::string* err) {
  return ParseFields(bytes, signature_offset, out, err) == Parsed::kOk;
}

HeaderCheck CheckHeader(const ReadAt& read_at, std::uint64_t file_size) {
  if (file_size == 0) return Verdicted(Verdict::kEmpty, "file is empty (0 bytes)");

  // H5FD_locate_signature: offset 0, then every power of two from 512 up to the file
  // size. A user block is only ever 0 or such a power, so nowhere else is looked at.
  std::array<std::uint8_t, kSignatureSize> probe{};
  std::optional<std::uint64_t> signature_offset;
  for (std::uint64_t offset = 0; offset < file_size;) {
    const auto want =
        static_cast<std::size_t>(std::min<std::uint64_t>(kSignatureSize, file_size - offset));
    const ReadOutcome r = ReadFully(read_at, offset, probe.data(), want);
    if (r.error != 0) return ReadFailed(r.error, offset, want);
    if (r.got < want) return Shrank(file_size, offset + r.got);
    if (want == kSignatureSize && probe == kSignature) {
      signature_offset = offset;
      break;
    }
    if (offset == 0 && want < kSignatureSize &&
        std::equal(probe.begin(), probe.begin() + want, kSignature.begin())) {
      return Verdicted(Verdict::kTruncated, "file ends at " + std::to_string(file_size) +
                                                " bytes, inside the HDF5 signature" +
                                                kTruncatedCause);
    }
    if (offset > std::numeric_limits<std::uint64_t>::max() / 2) break;
    offset = offset == 0 ? kFirstUserBlockSize : offset * 2;
  }
  if (!signature_offset) {
    return Verdicted(Verdict::kNotCheckpoint,
                     "no HDF5 signature at offset 0 or any user-block offset: not an HDF5 file");
  }

  const std::uint64_t at = *signature_offset;
  std::array<std::uint8_t, kMaxSuperblockSize> buf{};
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), file_size - at));
  const ReadOutcome r = ReadFully(read_at, at, buf.data(), want);
  if (r.error != 0) return ReadFailed(r.error, at, want);
  if (r.got < want) return Shrank(file_size, at + r.got);

  Superblock sb;
  std::string err;
  switch (ParseFields(std::span(buf).first(want), at, &sb, &err)) {
    case Parsed::kOk:
      break;
    case Parsed::kShort:
      return Verdicted(Verdict::kTruncated, "file ends at " + std::to_string(file_size) +
                                                " bytes, inside its HDF5 superblock at offset " +
                                                std::to_string(at) + " (" + err + ")" +
                                                kTruncatedCause);
    case Parsed::kMalformed:
      return Verdicted(Verdict::kCorrupt, err);
  }

  HeaderCheck check;
  check.superblock = sb;
  check.expected_bytes = sb.ExpectedFileSize();
  // A file being written has a stale end-of-file address, so "in progress" explains a
  // size mismatch better than the mismatch explains itself: check it first.
  if (sb.open_for_write() || sb.swmr_write()) {
    check.verdict = Verdict::kInProgress;
    check.reason = "superblock v3 says a writer has it open (or the writer died before closing it)";
    return check;
  }

  check.verdict = Verdict::kCorrupt;
  if (!check.expected_bytes) {
    check.reason = sb.eof_address == kUndefined
                       ? "HDF5 superblock has no end-of-file address (it is undefined): the "
                         "superblock is corrupt"
                       : "HDF5 superblock's end-of-file address (" +
                             std::to_string(sb.eof_address) + ") and base address (" +
                             AddressText(sb.base_address) +
                             ") do not give a file size: the superblock is corrupt";
    return check;
  }
  const std::uint64_t expected = *check.expected_bytes;
  const std::uint64_t superblock_end =
      at + SuperblockSize(sb.version, sb.sizeof_offsets, sb.sizeof_lengths);
  if (expected < superblock_end) {
    check.reason = "HDF5 superblock's end-of-file address (" + std::to_string(expected) +
                   ") lies inside the superblock itself: the superblock is corrupt";
    return check;
  }
  // libhdf5 would fail reading the root group past its end-of-address; say why now.
  if (sb.root_address == kUndefined || sb.root_address >= expected - at) {
    check.reason = "HDF5 superblock puts the root group at address " +
                   AddressText(sb.root_address) + ", outside the " + std::to_string(expected) +
                   " bytes it says the file has: the superblock is corrupt";
    return check;
  }
  // As H5F__super_read: stored EOF (absolute, moved with the superblock) against the
  // physical size. libhdf5 itself accepts a longer file; a clean close never leaves one.
  if (file_size < expected) {
    check.verdict = Verdict::kTruncated;
    check.reason = "file ends at " + std::to_string(file_size) +
                   " bytes but its HDF5 superblock says " + std::to_string(expected) +
                   kTruncatedCause + WriterHint(sb);
    return check;
  }
  // libhdf5 1.10 also sets bit 0 of v0-v2 superblocks while a writer has the file open and
  // rewrites the end-of-file address only on flush/close: a longer file with that bit set is
  // a save still under way (or one whose writer died), not damage.
  if (file_size > expected && sb.version < 3 && (sb.consistency_flags & kWriteAccess) != 0) {
    check.verdict = Verdict::kInProgress;
    check.reason = "HDF5 superblock v" + std::to_string(sb.version) +
                   " says a writer has the file open and the file has grown past its recorded "
                   "end (" + std::to_string(expected) + " bytes): a save is under way, or its "
                   "writer died before closing it";
    return check;
  }
  if (file_size > expected) {
    const std::uint64_t extra = file_size - expected;
    check.reason = "file is " + std::to_string(extra) + (extra == 1 ? " byte" : " bytes") +
                   " longer than its HDF5 superblock's end-of-file address (" +
                   std::to_string(expected) + "): the writer did not close it cleanly" +
                   WriterHint(sb);
    return check;
  }
  check.verdict = Verdict::kOk;
  return check;
}

HeaderCheck CheckHeaderOfFd(int fd, std::uint64_t file_size) {
  return CheckHeader(
      [fd](std::uint64_t offset, void* buf, std::size_t n) -> long {
        if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) {
          errno = EOVERFLOW;
          return -1;
        }
        return static_cast<long>(pread(fd, buf, n, static_cast<off_t>(offset)));
      },
      file_size);
}

}  // namespace ckptwatch
