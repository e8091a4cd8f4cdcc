// The CUDA part of the context (core/context.h, core/cuda/cuda_context.cuh): device, stream,
// cuBLAS and cuDNN handles, workspace. Created on first use, never destroyed: destroying
// library handles from static destructors races with the driver's own shutdown at exit.
#include <atomic>
#include <mutex>

#include "core/context.h"
#include "core/cuda/cuda_context.cuh"

namespace ember::cuda_rt {

CudaState& state() {
  static CudaState* s = [] {
    EMBER_CHECK(available(), "cuda: no usable device: " << unavailable_reason());
    auto* st = new CudaState;
    EMBER_CUDA_CHECK(cudaGetDevice(&st->device));
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&st->sm_count, cudaDevAttrMultiProcessorCount, st->device));
    // A blocking stream (not cudaStreamNonBlocking): work that some code still queues on the
    // legacy default stream 0 is then ordered with ours both ways, so the caching allocator's
    // stream-ordered reuse stays safe. Nothing in ember waits on stream 0 otherwise.
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&st->stream, cudaStreamDefault));
    return st;
  }();
  return *s;
}

namespace {
std::atomic<int64_t> g_cublas_uses{0}, g_cudnn_uses{0};
}  // namespace

LibraryUse library_use() { return {g_cublas_uses.load(), g_cudnn_uses.load()}; }

cublasHandle_t cublas_handle() {
  g_cublas_uses++;
  CudaState& s = state();
  static std::once_flag once;
  std::call_once(once, [&s] {
    EMBER_CUBLAS_CHECK(cublasCreate(&s.cublas));
    EMBER_CUBLAS_CHECK(cublasSetStream(s.cublas, s.stream));
  });
  // TF32 tensor cores only when allowed; CUBLAS_DEFAULT_MATH keeps fp32 GEMMs in full fp32.
  EMBER_CUBLAS_CHECK(
      cublasSetMathMode(s.cublas, context().allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return s.cublas;
}

cudnnHandle_t cudnn_handle() {
  g_cudnn_uses++;
  CudaState& s = state();
  static std::once_flag once;
  std::call_once(once, [&s] {
    EMBER_CUDNN_CHECK(cudnnCreate(&s.cudnn));
    EMBER_CUDNN_CHECK(cudnnSetStream(s.cudnn, s.stream));
  });
  return s.cudnn;
}

void* workspace(size_t bytes) {
  CudaState& s = state();
  if (bytes > s.workspace_bytes) {
    // The old buffer may still be read by queued kernels: returning it to the allocator is safe
    // because any reuse is ordered behind them on the same stream.
    if (s.workspace) deallocate(s.workspace, s.workspace_bytes);
    s.workspace = nullptr;
    s.workspace_bytes = 0;
    s.workspace = allocate(bytes);
    s.workspace_bytes = bytes;
  }
  return s.workspace;
}

}  // namespace ember::cuda_rt
