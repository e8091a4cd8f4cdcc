// Stand-in for the CUDA runtime header in the emulated build (docs/emulation.md): the runtime
// calls ember's launchers and tests make, over host memory, and the kernel launch itself
// (EMBER_LAUNCH in core/cuda/check.cuh expands to ember::emu::Launch here). Implemented in
// tests/emulation/runtime.cpp and emu.cpp.
#pragma once
#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "tests/emulation/emu.h"

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorCudartUnloading = 4,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoDevice = 100,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
};
using cudaError = cudaError_t;
struct CUstream_st;
using cudaStream_t = CUstream_st*;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
constexpr unsigned cudaStreamDefault = 0, cudaStreamNonBlocking = 1;

cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int device);
// The fields of cudaDeviceProp that ember reads (the device probe names the device).
struct cudaDeviceProp {
  char name[256];
  int major, minor;
  int multiProcessorCount;
};
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
// Events (the op profiler times kernels with them): the stream is synchronous, so an event holds the
// host time at which it was recorded.
struct CUevent_st;
using cudaEvent_t = CUevent_st*;
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) { return cudaMalloc(reinterpret_cast<void**>(p), bytes); }
cudaError_t cudaFree(void* p);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);

namespace ember::emu {
cudaError_t set_func_attribute(const void* fn, cudaFuncAttribute attr, int value);
// For the emulator's own test kernels, which no nvcc build has measured.
void set_kernel_resources(const void* fn, int regs, int static_smem, int max_threads = 1024);
// Runs a launch: checks it against the target's limits (on failure it sets the error that
// cudaGetLastError returns, as the runtime does), then runs body() on every thread of every block.
void run_launch(const void* fn, dim3 grid, dim3 block, size_t smem, cudaStream_t s, const std::function<void()>& body);

// EMBER_LAUNCH(grid, block, smem, stream, kernel)(args...): the arguments are converted to the
// kernel's parameter types and copied once, as the runtime does; every thread gets its own copy.
template <class... P>
class Launch {
 public:
  Launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s)
      : k_(k), grid_(grid), block_(block), smem_(smem), s_(s) {}
  template <class... A>
  void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    const std::tuple<std::decay_t<P>...> args(std::forward<A>(a)...);
    auto* k = k_;
    run_launch(reinterpret_cast<const void*>(k_), grid_, block_, smem_, s_,
               [&args, k] { std::apply([k](auto... v) { k(v...); }, args); });
  }

 private:
  void (*k_)(P...);
  dim3 grid_, block_;
  size_t smem_;
  cudaStream_t s_;
};
}  // namespace ember::emu

template <class... P>
cudaError_t cudaFuncSetAttribute(void (*fn)(P...), cudaFuncAttribute attr, int value) {
  return ::ember::emu::set_func_attribute(reinterpret_cast<const void*>(fn), attr, value);
}
