// Device probing, copies and synchronisation (core/device_memory.h).
// Every copy is queued on the context's one stream, so it is ordered with the kernels around it.
#include <string>

#include "core/cuda/cuda_context.cuh"

namespace ember::cuda_rt {

namespace {

struct Probe {
  bool ok = false;
  std::string reason;
};

// Asked once. A machine without a driver, with a driver too old for this toolkit ("CUDA driver
// version is insufficient for CUDA runtime version") or with no device is not an error: ember
// runs on the CPU and says why.
const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    try {
      int n = 0;
      cudaError_t e = cudaGetDeviceCount(&n);
      if (e != cudaSuccess) {
        r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
        (void)cudaGetLastError();  // clear it so later calls do not report it again
      } else if (n == 0) {
        r.reason = "no CUDA device found";
      } else {
        r.ok = true;
      }
    } catch (...) {
      r.ok = false;
      r.reason = "probing CUDA failed";
    }
    return r;
  }();
  return p;
}

}  // namespace

bool available() { return probe().ok; }
const std::string& unavailable_reason() { return probe().reason; }

void copy_host_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  cudaStream_t s = stream();
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
  // Callers free `src` as soon as we return (a std::vector, a loader's batch). From pageable
  // memory the runtime stages the data before returning, but from pinned memory the copy would
  // still be in flight, so we wait: uploads are rare (batches, checkpoints), kernels are not.
  EMBER_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_device_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  cudaStream_t s = stream();
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_device_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
}

void synchronize() {
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream()));
  EMBER_CUDA_CHECK(cudaGetLastError());
}

}  // namespace ember::cuda_rt
