// What every kernels/cuda/*.cu file includes: the kernel declarations (kernels/kernels.h), the
// CUDA context (stream, handles, temporary buffers), the checks and launch helpers, the shared-memory
// opt-in, and (kernels/cuda/block_reduce.cuh) the warp/block reductions of every kernel family.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "core/cuda/check.cuh"
#ifndef EMBER_KERNELS_ONLY
#include "core/cuda/cuda_context.cuh"
#include "kernels/channel_layout.h"
#include "kernels/kernels.h"
#else
// The kernel lab (kernels/lab/) compiles a family's .cu file into a program of its own, without
// ember's context, tensors or cuDNN: its launchers run on the stream they are given.
namespace ember::cuda_rt {
inline void check_stream(cudaStream_t, const char*) {}
}  // namespace ember::cuda_rt
#endif
#if defined(__CUDACC__) || defined(EMBER_EMULATION)
#include "kernels/cuda/block_reduce.cuh"  // group_reduce, block_reduce, block_sum, block_max
#endif

namespace ember::cuda {

using cuda_rt::blocks_for;
using cuda_rt::global_index;
using cuda_rt::kLinearBlock;
using cuda_rt::linear_kernel;
#ifndef EMBER_KERNELS_ONLY
using cuda_rt::DeviceBuffer;
using cuda_rt::stream;
#endif

// float4 loads and stores need 16-byte alignment; tensors at an offset into a storage may lack it.
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Shared memory per block: 48 KB (49,152 bytes) of static plus dynamic shared memory without asking;
// up to the device's opt-in limit after allow_smem() below: 227 KB (232,448 bytes) on sm_90,
// 163 KB (166,912) on sm_80, 99 KB (101,376) on sm_86 and sm_89. device_info().max_smem_optin
// reads the limit of the device at hand.
constexpr size_t kDefaultSmemBytes = 48 * 1024;

// Raises `kernel`'s dynamic shared-memory limit to `bytes` when that exceeds the default (the
// launch itself still fails, and its check says so, past the device's opt-in limit).
template <class Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  if (bytes > kDefaultSmemBytes)
    EMBER_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

// The smallest power of two >= v (v >= 1), at most `cap`.
inline int pow2_at_least(int64_t v, int cap) {
  int p = 1;
  while (p < v && p < cap) p *= 2;
  return p;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Properties of the current device, read once per device (the grid heuristics need them).
struct DeviceInfo {
  int sm_count = 0;
  int max_smem_optin = 0;  // bytes of dynamic shared memory one block may ask for
};
inline const DeviceInfo& device_info() {
  constexpr int kMaxDevices = 16;
  static DeviceInfo infos[kMaxDevices];
  int dev = 0;
  EMBER_CUDA_CHECK(cudaGetDevice(&dev));
  DeviceInfo& d = infos[dev % kMaxDevices];
  if (d.sm_count == 0) {
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&d.max_smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&d.sm_count, cudaDevAttrMultiProcessorCount, dev));
  }
  return d;
}

}  // namespace ember::cuda
