// Error checking and the launch helper for every CUDA source in ember.
//
// One family of checks, generated from one template for the three libraries we call:
//   EMBER_CUDA_CHECK(cudaMemcpyAsync(...));    EMBER_CUBLAS_CHECK(cublasSgemm(...));
//   EMBER_CUDNN_CHECK(cudnnConvolutionForward(...));
// On failure each throws ember::Error naming the library, its status text and code, the call as
// written, the enclosing function, file and line. Allocation failures inside a library throw
// ember::OutOfMemory instead, so callers can tell them apart.
//
// Host-only code may include this file too (the launch helpers need nvcc or the emulator).
//
// Kernel launches report errors only through cudaGetLastError: EMBER_CUDA_LAUNCH_CHECK() follows
// every <<<...>>>. Faults inside a running kernel surface at the next synchronising call; set
// EMBER_SYNC_DEBUG=1 (core/context.h) to synchronise after every op and pinpoint them.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#ifndef EMBER_KERNELS_ONLY  // the kernel lab (kernels/lab/) builds without cuDNN
#include <cudnn.h>
#endif

#include <cstdint>
#include <string>
#include <utility>

#include "core/error.h"

namespace ember::cuda_rt::detail {

inline bool ok(cudaError_t s) { return s == cudaSuccess; }
inline bool ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }
#ifndef EMBER_KERNELS_ONLY
inline bool ok(cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS; }
#endif

inline const char* status_text(cudaError_t s) { return cudaGetErrorString(s); }
inline const char* status_text(cublasStatus_t s) { return cublasGetStatusString(s); }
#ifndef EMBER_KERNELS_ONLY
inline const char* status_text(cudnnStatus_t s) { return cudnnGetErrorString(s); }
#endif

inline bool out_of_memory(cudaError_t s) { return s == cudaErrorMemoryAllocation; }
inline bool out_of_memory(cublasStatus_t s) { return s == CUBLAS_STATUS_ALLOC_FAILED; }
#ifndef EMBER_KERNELS_ONLY
inline bool out_of_memory(cudnnStatus_t s) { return s == CUDNN_STATUS_ALLOC_FAILED; }
#endif

// Builds the message and throws (out of line: keeps the macro expansion small).
[[noreturn]] void throw_api_error(const char* library, const char* status, int code, bool oom, const char* call,
                                  const char* function, const char* file, int line);

template <class Status>
inline void check(Status s, const char* library, const char* call, const char* function, const char* file, int line) {
  if (!ok(s))
    throw_api_error(library, status_text(s), static_cast<int>(s), out_of_memory(s), call, function, file, line);
}

// EMBER_CUDA_LAUNCH_CHECK's half: `label` is "" when the launch has none.
inline void check_launch(const char* label, const char* function, const char* file, int line) {
  const cudaError_t s = cudaGetLastError();
  if (!ok(s)) {
    const std::string call = *label ? std::string("launch ") + label : std::string("launch");
    throw_api_error("CUDA", status_text(s), static_cast<int>(s), out_of_memory(s), call.c_str(), function, file, line);
  }
}

}  // namespace ember::cuda_rt::detail

#define EMBER_API_CHECK_(library, call) \
  ::ember::cuda_rt::detail::check((call), library, #call, __func__, __FILE__, __LINE__)
#define EMBER_CUDA_CHECK(call) EMBER_API_CHECK_("CUDA", call)
#define EMBER_CUBLAS_CHECK(call) EMBER_API_CHECK_("cuBLAS", call)
#define EMBER_CUDNN_CHECK(call) EMBER_API_CHECK_("cuDNN", call)
// After every kernel launch: catches bad configurations (grid too large, too much shared memory).
// An optional label (a string literal) names the launch in the error: EMBER_CUDA_LAUNCH_CHECK("sn_scale")
// reports "launch sn_scale", a bare EMBER_CUDA_LAUNCH_CHECK() "launch" (both with function, file, line).
#define EMBER_CUDA_LAUNCH_CHECK(...) \
  ::ember::cuda_rt::detail::check_launch("" __VA_ARGS__, __func__, __FILE__, __LINE__)

// Every kernel launch in ember: EMBER_LAUNCH(grid, block, smem, stream, kernel)(args...). Under
// nvcc it is kernel<<<grid, block, smem, stream>>>(args...); in the emulated build (host C++,
// tests/emulation, docs/emulation.md) it runs the kernel on the CPU after the launch-resource
// checks. The kernel comes last so that template arguments with commas need no parentheses.
#ifdef EMBER_EMULATION
#define EMBER_LAUNCH(grid, block, smem, stream, ...) ::ember::emu::Launch(__VA_ARGS__, grid, block, smem, stream)
#else
#define EMBER_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>
#endif

// Shared memory is declared through these (tests/emulation gives each block its own copy):
//   EMBER_SHARED(float, scratch, [32]);     is  __shared__ float scratch[32];
//   EMBER_DYNAMIC_SHARED(float4, smem);     is  extern __shared__ float4 smem[];
#ifndef EMBER_EMULATION
#define EMBER_SHARED(type, name, dims) __shared__ type name dims
#define EMBER_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

namespace ember::cuda_rt {

// Threads per block for one-thread-per-element kernels: enough warps to hide latency, small
// enough that odd sizes waste little.
constexpr int kLinearBlock = 256;

// Blocks needed to give each of n items one thread (n > 0).
inline unsigned blocks_for(int64_t n, int block = kLinearBlock) {
  return static_cast<unsigned>((n + block - 1) / block);
}

// Launches kernel(n, args...) with one thread per item on `stream` and checks the launch.
// Kernels begin with `if (i >= n) return;` (tiny-cuda-nn's linear_kernel). n == 0 launches nothing.
#if defined(__CUDACC__) || defined(EMBER_EMULATION)
template <class... KernelArgs, class... Args>
void linear_kernel(void (*kernel)(int64_t, KernelArgs...), uint32_t shmem, cudaStream_t stream, int64_t n,
                   Args&&... args) {
  if (n <= 0) return;
  EMBER_LAUNCH(blocks_for(n), kLinearBlock, shmem, stream, kernel)(n, std::forward<Args>(args)...);
  EMBER_CUDA_LAUNCH_CHECK();
}

// The global index of this thread in a one-dimensional launch, in 64 bits.
__device__ __forceinline__ int64_t global_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
#endif

}  // namespace ember::cuda_rt
