// The CUDA half of ember's one context object (core/context.h): the device, the one stream
// every kernel and copy runs on, the cuBLAS and cuDNN handles bound to that stream, and a
// growable workspace. Internal to the CUDA sources; created lazily on first use.
//
// THE ONE-STREAM INVARIANT. Every kernel, copy and cuBLAS/cuDNN call ember makes runs on the
// context's one stream, stream(). Two things are correct only because of it:
//  - the caching allocator (core/cuda/allocator.cu) hands a freed block out again at once, with no
//    event: the new owner's work is queued behind the old owner's because both are on this stream;
//  - the fused spectral-norm kernels count finished blocks in one global ticket array
//    (kernels/cuda/spectral_norm.cu): two of them overlapping on different streams would mix counts.
// The ember::cuda entries take stream() themselves; the lower-level launchers that accept a
// cudaStream_t (softmax, spectral norm: tests and benchmarks call them directly) assert it with
// check_stream(), so passing stream 0 or a stream of one's own fails loudly instead of racing.
// Lifting the invariant would need an event recorded per free and waited on before reuse.
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

// Throws unless `s` is the context's stream (the invariant above). `who` names the launcher.
inline void check_stream(cudaStream_t s, const char* who) {
  EMBER_CHECK(s == stream(), who << ": called with stream " << static_cast<const void*>(s)
                                 << ", but every ember launch must run on the context's stream "
                                 << static_cast<const void*>(stream())
                                 << " (cuda_rt::stream()): the caching allocator and the spectral-norm"
                                 << " tickets are ordered by that one stream");
}

// cuBLAS with the math mode set from context().allow_tf32 (checked on every call: the flag may change).
cublasHandle_t cublas_handle();
// cuDNN, bound to the stream.
cudnnHandle_t cudnn_handle();
// How many times each handle has been asked for: every cuBLAS and cuDNN call ember makes asks first.
// The CUDA tests check with it that a test using a library carries the [library] tag
// (tests/cuda/main.cpp), which scripts/gpu_check.sh leaves out of the compute-sanitizer runs.
struct LibraryUse {
  int64_t cublas = 0, cudnn = 0;
};
LibraryUse library_use();
// Scratch memory of at least `bytes`, valid until the next workspace() call. Grows, never shrinks.
void* workspace(size_t bytes);

// A temporary device buffer from the caching allocator, released when it goes out of scope.
// Move-only: a copy would free twice. Freed memory is reused in stream order (the one-stream
// invariant above), so a buffer may be dropped right after queueing the kernels that read it.
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
