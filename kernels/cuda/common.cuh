// What every kernels/cuda/*.cu file includes: the kernel declarations (kernels/kernels.h), the
// CUDA context (stream, handles, temporary buffers), the checks and launch helper, and the
// warp/block reductions of the softmax and spectral-norm kernels (namespace kcuda).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "core/cuda/check.cuh"
#include "core/cuda/cuda_context.cuh"
#include "kernels/channel_layout.h"
#include "kernels/kernels.h"

namespace ember::cuda {

using cuda_rt::blocks_for;
using cuda_rt::DeviceBuffer;
using cuda_rt::global_index;
using cuda_rt::kLinearBlock;
using cuda_rt::linear_kernel;
using cuda_rt::stream;

// float4 loads and stores need 16-byte alignment; tensors at an offset into a storage may lack it.
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The smallest power of two >= v (v >= 1), at most `cap`.
inline int pow2_at_least(int64_t v, int cap) {
  int p = 1;
  while (p < v && p < cap) p *= 2;
  return p;
}


}  // namespace ember::cuda

// The softmax and spectral-norm kernels name the checks and the stream through these aliases.
#define EMBER_KCUDA_CHECK(stmt) EMBER_CUDA_CHECK(stmt)
#define EMBER_KCUDA_CHECK_LAUNCH(what) EMBER_CUDA_LAUNCH_CHECK()

namespace ember::kcuda {

// The stream the ember::cuda:: entries run on: the context's one stream.
inline cudaStream_t kstream() { return ::ember::cuda_rt::stream(); }

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

using ::ember::cuda::aligned16;

// Properties of the current device, read once per device (the grid heuristics need them).
struct DeviceInfo {
  int sm_count = 0;
  int max_smem_optin = 0;  // bytes of dynamic shared memory one block may ask for
};
inline const DeviceInfo& device_info() {
  constexpr int kMaxDevices = 16;
  static DeviceInfo infos[kMaxDevices];
  int dev = 0;
  EMBER_KCUDA_CHECK(cudaGetDevice(&dev));
  DeviceInfo& d = infos[dev % kMaxDevices];
  if (d.sm_count == 0) {
    EMBER_KCUDA_CHECK(cudaDeviceGetAttribute(&d.max_smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    EMBER_KCUDA_CHECK(cudaDeviceGetAttribute(&d.sm_count, cudaDevAttrMultiProcessorCount, dev));
  }
  return d;
}

#if defined(__CUDACC__) || defined(EMBER_EMULATION)
constexpr unsigned kFullMask = 0xffffffffu;

struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Reduces over groups of `width` consecutive lanes (a power of two <= 32); every lane of a
// group gets the result (butterfly exchange). All 32 lanes of the warp must call it.
template <int width = 32, class Op>
__device__ __forceinline__ float group_reduce(float x, Op op) {
#pragma unroll
  for (int o = width / 2; o > 0; o /= 2) x = op(x, __shfl_xor_sync(kFullMask, x, o, width));
  return x;
}
template <int width = 32>
__device__ __forceinline__ float group_sum(float x) { return group_reduce<width>(x, SumOp{}); }
template <int width = 32>
__device__ __forceinline__ float group_max(float x) { return group_reduce<width>(x, MaxOp{}); }

// Block-wide reduction over all threads of a 1-, 2- or 3-D block whose size is a multiple of
// 32; every thread gets the result. `scratch` holds 32 floats of shared memory; the leading
// barrier lets consecutive calls reuse it. Warps are runs of 32 consecutive linear indices.
template <class Op>
__device__ __forceinline__ float block_reduce(float x, float* scratch, float identity, Op op) {
  const int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int lane = tid & 31, warp = tid >> 5, nwarps = (blockDim.x * blockDim.y * blockDim.z) >> 5;
  x = group_reduce(x, op);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  x = lane < nwarps ? scratch[lane] : identity;
  return group_reduce(x, op);
}
__device__ __forceinline__ float block_sum(float x, float* scratch) { return block_reduce(x, scratch, 0.0f, SumOp{}); }
__device__ __forceinline__ float block_max(float x, float* scratch) {
  return block_reduce(x, scratch, -INFINITY, MaxOp{});
}
#endif  // __CUDACC__ || EMBER_EMULATION

}  // namespace ember::kcuda
