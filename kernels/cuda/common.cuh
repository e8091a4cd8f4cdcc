// Internal helpers for the softmax and spectral-norm CUDA kernels: error checks, the stream,
// and warp/block reductions.
//
// The project's own error macros (core/cuda/check.cuh) and context stream
// (ember::cuda_rt::stream() in core/cuda/cuda_context.cuh) are written by the cuda-backend
// helper. Where those headers exist they are used; until then this header falls back to local
// macros and the default stream. Either way the kernels only see EMBER_KCUDA_CHECK,
// EMBER_KCUDA_CHECK_LAUNCH and kstream(), so this is the only place that changes.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"

#if __has_include("core/cuda/cuda_context.cuh")
#include "core/cuda/cuda_context.cuh"
#define EMBER_KCUDA_HAVE_CONTEXT 1
#endif
#if __has_include("core/cuda/check.cuh")
#include "core/cuda/check.cuh"
#define EMBER_KCUDA_CHECK(stmt) EMBER_CUDA_CHECK(stmt)
#define EMBER_KCUDA_CHECK_LAUNCH(what) EMBER_CUDA_LAUNCH_CHECK()
#endif

namespace ember::kcuda {
// Throws ember::Error naming the failed statement (or launch), the function, file and line.
[[noreturn]] inline void cuda_fail(cudaError_t err, const char* what, const char* func, const char* file,
                                   int line) {
  ::ember::detail::throw_error(std::string("CUDA error in ") + func + ": " + what + " returned " +
                                   cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")",
                               file, line);
}
}  // namespace ember::kcuda

#ifndef EMBER_KCUDA_CHECK
// Checks a CUDA runtime call.
#define EMBER_KCUDA_CHECK(stmt)                                                        \
  do {                                                                                 \
    cudaError_t ember_kerr_ = (stmt);                                                  \
    if (ember_kerr_ != cudaSuccess)                                                    \
      ::ember::kcuda::cuda_fail(ember_kerr_, #stmt, __func__, __FILE__, __LINE__);     \
  } while (0)
// After a <<<...>>> launch (`what` names the kernel): reports a bad configuration at once;
// faults inside the kernel surface at the next synchronising call, or right away under
// EMBER_SYNC_DEBUG=1.
#define EMBER_KCUDA_CHECK_LAUNCH(what)                                                  \
  do {                                                                                 \
    cudaError_t ember_kerr_ = cudaGetLastError();                                      \
    if (ember_kerr_ != cudaSuccess)                                                    \
      ::ember::kcuda::cuda_fail(ember_kerr_, "launch of " what, __func__, __FILE__, __LINE__); \
  } while (0)
#endif

namespace ember::kcuda {

// The stream the ember::cuda:: entries run on: the context's one stream.
inline cudaStream_t kstream() {
#ifdef EMBER_KCUDA_HAVE_CONTEXT
  return ::ember::cuda_rt::stream();
#else
  return 0;  // TODO(cuda-backend helper): replaced by ember::cuda_rt::stream() once it is on main
#endif
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

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

#ifdef __CUDACC__
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
#endif  // __CUDACC__

}  // namespace ember::kcuda
