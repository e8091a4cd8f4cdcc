// The CUDA half of ember's one context object (core/context.h): the device, the one stream
// every kernel and copy runs on, the cuBLAS and cuDNN handles bound to that stream, and a
// growable workspace. Internal to the CUDA sources; created lazily on first use.
//
// Everything is ordered on the one stream, so memory freed to the caching allocator may be
// handed out again at once: any later use is queued behind the kernels that still read it.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>

#include "core/cuda/check.cuh"
#include "core/device_memory.h"

namespace ember::cuda_rt {

struct CudaState {
  int device = 0;
  int sm_count = 0;  // streaming multiprocessors: sizes grids of reduction kernels
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;  // bound to `stream`; use cublas_handle() for the math mode
  cudnnHandle_t cudnn = nullptr;    // created on first use (loading cuDNN takes a while)
  void* workspace = nullptr;        // from the caching allocator
  size_t workspace_bytes = 0;
};

// The state, created on first call. Throws ember::Error when no device is usable.
CudaState& state();
inline cudaStream_t stream() { return state().stream; }

// cuBLAS with the math mode set from context().allow_tf32 (checked on every call: the flag may change).
cublasHandle_t cublas_handle();
// cuDNN, bound to the stream.
cudnnHandle_t cudnn_handle();
// Scratch memory of at least `bytes`, valid until the next workspace() call. Grows, never shrinks.
void* workspace(size_t bytes);

// A temporary device buffer from the caching allocator, released when it goes out of scope.
// Move-only: a copy would free twice. Freed memory is reused in stream order, so a buffer may be
// dropped right after queueing the kernels that read it.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count) ptr_ = static_cast<T*>(allocate(count * sizeof(T)));
  }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), count_(o.count_) { o.ptr_ = nullptr, o.count_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = o.ptr_, count_ = o.count_;
      o.ptr_ = nullptr, o.count_ = 0;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() const { return ptr_; }
  size_t size() const { return count_; }

 private:
  void release() {
    if (ptr_) deallocate(ptr_, count_ * sizeof(T));
    ptr_ = nullptr;
  }
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace ember::cuda_rt
