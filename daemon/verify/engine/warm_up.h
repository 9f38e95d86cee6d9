// The warm-up: before a new warm verifier is handed its first file, it verifies a small
// checkpoint of our own, so that the first file's verdict does not pay for what any first
// verification pays in a fresh fork. Measured on this project's VM (a fault costs ~20 µs, and
// each page a new process touches costs the hypervisor a shadow-page fault too): a 1 MiB Keras
// file took 4.5-5 ms to verify as a verifier's first file and 0.7 ms as its second — about
// 210 page faults where the heap grew and copy-on-write copies were made, and the first touch
// of every page of code and data. Warmed up, the first file takes 1.4-2.4 ms. That first file
// was the paced p99 of bench/latency_bench.py, once per verifier.
//
// The file is written by libhdf5 into memory by the zygote: no byte of it comes from a user,
// so verifying it before confinement, outside any owner's domain, is safe. The zygote also
// verifies it once itself: libhdf5's lazily built tables are then inherited.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "verify/verifier.h"

namespace ckptwatch {

/// A Keras 2 `model.save("*.h5")` of two Dense layers (model_config, layer_names and
/// weight_names, float32 kernels and biases) as libhdf5 writes it, in memory. Built once per
/// process; the zygote builds it before it forks, so its children share it.
const std::vector<std::uint8_t>& WarmUpImage();

/// glibc malloc settings for a process that verifies one file after another: allocations up to
/// kHeapMmapThreshold come from the heap, and freed heap is kept (up to kHeapTrimThreshold)
/// for the next file instead of being returned and faulted in again — libhdf5 zeroes a fresh
/// 512 KiB cache table per open file. Call before the first allocation they should govern.
void KeepFreedHeapForNextFile();
inline constexpr std::size_t kHeapMmapThreshold = std::size_t{4} << 20;
inline constexpr std::size_t kHeapTrimThreshold = std::size_t{8} << 20;

/// The lowest descriptor WarmUpFd() takes: above those a verifier child is given.
inline constexpr int kWarmUpFdMin = 16;

/// WarmUpImage() in a sealed, read-only memfd (close-on-exec), made on the first call and kept
/// open: the zygote makes it before its confinement forbids memfd_create(), and its forks
/// inherit it until their own confinement closes it. -1 with the reason in `*err`.
int WarmUpFd(std::string* err);

/// True once WarmUpFd() succeeded in this process or in the zygote that forked it. A verifier
/// exec'd for `ckptwatch verify` has no such file: its first file comes at once, and would
/// only wait for a warm-up.
bool HasWarmUpFd();

/// Verifies WarmUpFd() as "warm-up.h5" with `options`, the way a checkpoint is verified. True
/// when the verdict is ok and no libhdf5 handle is left open; false with the reason in `*err`.
bool WarmUp(const VerifyOptions& options, std::string* err);

}  // namespace ckptwatch
