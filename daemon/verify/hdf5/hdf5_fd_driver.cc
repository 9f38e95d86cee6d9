#include "verify/hdf5/hdf5_fd_driver.h"

#include <H5FDpublic.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>

namespace ckptwatch {
namespace {

struct FdInfo {
  int fd;
};

// libhdf5 reads metadata one object at a time, each read a pread: opening and walking a 1 MiB
// Keras file took 26 of 8-872 bytes, nearly all within its first 6 KiB; a 1 GiB file of 512
// datasets 2,888, within 275 distinct 64 KiB stretches (strace). Metadata reads that fit in one
// aligned window are served from the few windows last read whole: about 4 preads for that
// small file. Raw data (H5FD_MEM_DRAW) is read as asked: it is large, and read once.
constexpr std::size_t kMetadataWindowBytes = 32u << 10;
constexpr std::size_t kMetadataWindows = 4;

struct MetadataWindow {
  haddr_t start = HADDR_UNDEF;
  std::size_t valid = 0;   // bytes read; fewer than kMetadataWindowBytes at the end of the file
  std::uint64_t used = 0;  // when it last served a read: the least recent is refilled
};

// The open file: H5FD_t must come first, libhdf5 fills it in.
struct FdFile {
  H5FD_t pub;
  int fd;
  haddr_t eoa;
  haddr_t eof;
  dev_t device;
  ino_t inode;
  std::uint8_t* window_bytes;  // kMetadataWindows * kMetadataWindowBytes, allocated at the first
                               // metadata read
  MetadataWindow windows[kMetadataWindows];
  std::uint64_t reads;
};

std::atomic<std::uint64_t> preads_made{0};

// The largest address a signed 64-bit file offset can reach (as sec2).
constexpr haddr_t kMaxAddress = (haddr_t{1} << 63) - 1;

// libhdf5's own error stack is for its drivers; ours report through the
// return value, and the caller turns the failed open into a verdict.
H5FD_t* Open(const char*, unsigned flags, hid_t fapl, haddr_t maxaddr) {
  if ((flags & (H5F_ACC_RDWR | H5F_ACC_TRUNC | H5F_ACC_CREAT | H5F_ACC_EXCL)) != 0) return nullptr;
  if (maxaddr == 0 || maxaddr == HADDR_UNDEF || maxaddr > kMaxAddress) return nullptr;
  const auto* info = static_cast<const FdInfo*>(H5Pget_driver_info(fapl));
  if (info == nullptr || info->fd < 0) return nullptr;
  struct stat st;
  if (fstat(info->fd, &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
  auto* file = new (std::nothrow) FdFile{};
  if (file == nullptr) return nullptr;
  file->fd = info->fd;
  file->eoa = 0;
  file->eof = static_cast<haddr_t>(st.st_size);
  file->device = st.st_dev;
  file->inode = st.st_ino;
  return &file->pub;
}

herr_t Close(H5FD_t* file) {
  auto* f = reinterpret_cast<FdFile*>(file);
  delete[] f->window_bytes;
  delete f;  // the descriptor is the caller's
  return 0;
}

int Compare(const H5FD_t* a, const H5FD_t* b) {
  const auto* x = reinterpret_cast<const FdFile*>(a);
  const auto* y = reinterpret_cast<const FdFile*>(b);
  if (x->device != y->device) return x->device < y->device ? -1 : 1;
  if (x->inode != y->inode) return x->inode < y->inode ? -1 : 1;
  return 0;
}

herr_t Query(const H5FD_t*, unsigned long* flags) {
  // What sec2 declares. The metadata accumulator gathers writes, not reads: reading, libhdf5
  // still asks for one object at a time (the windows above gather those).
  if (flags != nullptr)
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA | H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
  return 0;
}

haddr_t GetEoa(const H5FD_t* file, H5FD_mem_t) { return reinterpret_cast<const FdFile*>(file)->eoa; }

herr_t SetEoa(H5FD_t* file, H5FD_mem_t, haddr_t address) {
  reinterpret_cast<FdFile*>(file)->eoa = address;
  return 0;
}

haddr_t GetEof(const H5FD_t* file, H5FD_mem_t) { return reinterpret_cast<const FdFile*>(file)->eof; }

herr_t GetHandle(H5FD_t* file, hid_t, void** handle) {
  if (handle == nullptr) return -1;
  *handle = &reinterpret_cast<FdFile*>(file)->fd;
  return 0;
}

// Reads `size` bytes at `address` through short reads and EINTR: how many there were (fewer
// only at the end of the file), or -1 when a read failed.
ssize_t ReadUpTo(int fd, haddr_t address, size_t size, std::uint8_t* out) {
  size_t got = 0;
  while (got < size) {
    preads_made.fetch_add(1, std::memory_order_relaxed);
    const ssize_t n = pread(fd, out + got, size - got, static_cast<off_t>(address + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;  // the end of the file
    got += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

// The window holding [start, start + kMetadataWindowBytes), read now unless one holds it already;
// nullptr when it cannot be allocated or read (the caller then reads directly).
const MetadataWindow* WindowAt(FdFile* f, haddr_t start) {
  if (f->window_bytes == nullptr) {
    f->window_bytes = new (std::nothrow) std::uint8_t[kMetadataWindows * kMetadataWindowBytes];
    if (f->window_bytes == nullptr) return nullptr;
  }
  MetadataWindow* oldest = &f->windows[0];
  for (MetadataWindow& w : f->windows) {
    if (w.start == start) {
      w.used = ++f->reads;
      return &w;
    }
    if (w.used < oldest->used) oldest = &w;
  }
  std::uint8_t* bytes = f->window_bytes + (oldest - f->windows) * kMetadataWindowBytes;
  const ssize_t valid = ReadUpTo(f->fd, start, kMetadataWindowBytes, bytes);
  if (valid < 0) {
    oldest->start = HADDR_UNDEF;  // its bytes are part overwritten
    return nullptr;
  }
  *oldest = MetadataWindow{start, static_cast<std::size_t>(valid), ++f->reads};
  return oldest;
}

// As sec2: a read inside the allocated space but past the end of the file
// returns zeros; libhdf5 compares end-of-file with end-of-allocation itself
// and reports a truncated file.
herr_t Read(H5FD_t* file, H5FD_mem_t type, hid_t, haddr_t address, size_t size, void* buffer) {
  auto* f = reinterpret_cast<FdFile*>(file);
  if (address == HADDR_UNDEF || address > kMaxAddress || size > kMaxAddress - address) return -1;
  if (address + size > f->eoa) return -1;
  auto* out = static_cast<std::uint8_t*>(buffer);
  const haddr_t start = address - address % kMetadataWindowBytes;
  if (type != H5FD_MEM_DRAW && size > 0 && address + size - start <= kMetadataWindowBytes) {
    if (const MetadataWindow* w = WindowAt(f, start)) {
      const std::size_t offset = static_cast<std::size_t>(address - start);
      const std::size_t have = w->valid > offset ? std::min(size, w->valid - offset) : 0;
      const std::uint8_t* bytes = f->window_bytes + (w - f->windows) * kMetadataWindowBytes;
      std::memcpy(out, bytes + offset, have);
      std::memset(out + have, 0, size - have);  // past the end of the file
      return 0;
    }
  }
  const ssize_t got = ReadUpTo(f->fd, address, size, out);
  if (got < 0) return -1;
  std::memset(out + got, 0, size - static_cast<size_t>(got));
  return 0;
}

herr_t Write(H5FD_t*, H5FD_mem_t, hid_t, haddr_t, size_t, const void*) { return -1; }

herr_t Truncate(H5FD_t*, hid_t, hbool_t) { return 0; }  // read-only: nothing to do

H5FD_class_t MakeClass() {
  H5FD_class_t cls{};
  cls.name = "ckptwatch_fd";
  cls.maxaddr = kMaxAddress;
  cls.fc_degree = H5F_CLOSE_WEAK;
  cls.fapl_size = sizeof(FdInfo);
  cls.open = Open;
  cls.close = Close;
  cls.cmp = Compare;
  cls.query = Query;
  cls.get_eoa = GetEoa;
  cls.set_eoa = SetEoa;
  cls.get_eof = GetEof;
  cls.get_handle = GetHandle;
  cls.read = Read;
  cls.write = Write;
  cls.truncate = Truncate;
  const H5FD_mem_t dichotomy[H5FD_MEM_NTYPES] = H5FD_FLMAP_DICHOTOMY;
  std::memcpy(cls.fl_map, dichotomy, sizeof dichotomy);
  return cls;
}

hid_t DriverId() {
  static const H5FD_class_t cls = MakeClass();
  static const hid_t id = H5FDregister(&cls);
  return id;
}

}  // namespace

std::uint64_t FdDriverPreads() { return preads_made.load(std::memory_order_relaxed); }

bool SetFdDriver(hid_t fapl, int fd) {
  hid_t driver = DriverId();
  if (driver < 0 || fd < 0) return false;
  FdInfo info{fd};
  return H5Pset_driver(fapl, driver, &info) >= 0;
}

}  // namespace ckptwatch
