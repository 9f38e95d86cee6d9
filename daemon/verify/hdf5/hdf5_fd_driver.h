// A read-only HDF5 virtual file driver over a file descriptor the caller has
// already opened: libhdf5 reads the checkpoint through it and never opens a
// path itself, so the confined verifier child needs no open() at all.
#pragma once

#include <hdf5.h>

#include <cstdint>

namespace ckptwatch {

/// Makes `fapl` read through `fd` (borrowed: never closed, never written,
/// never locked). The file must be opened with H5F_ACC_RDONLY; the name
/// passed to H5Fopen only labels error messages. False if libhdf5 refused.
bool SetFdDriver(hid_t fapl, int fd);

/// How many preads the driver made in this process, for tests: small metadata reads are served
/// from a few windows of 32 KiB read whole, so a small file's open and walk takes a handful.
std::uint64_t FdDriverPreads();

}  // namespace ckptwatch
