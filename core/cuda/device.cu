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

// The architectures this file was compiled for (nvcc's __CUDA_ARCH_LIST__, e.g. 800,860,890,900),
// which are those of every kernel in the library: CMake builds all CUDA sources with one list.
#ifdef __CUDA_ARCH_LIST__
constexpr int kBuiltArchs[] = {__CUDA_ARCH_LIST__};
#else
constexpr int kBuiltArchs[] = {800};  // not reached with nvcc >= 11.5, which defines the list
#endif
constexpr int kMinArch = 800;  // the supported floor: TF32 mma.sync, and what CMake builds by default

// Empty when the current device can run ember's kernels, else why not. Below compute capability 8.0
// nothing is supported (only sm_80+ code is built); below the oldest built architecture neither
// the machine code nor the PTX can load, which would otherwise surface as "no kernel image is
// available" at the first launch.
std::string unsupported_device() {
  int dev = 0, major = 0, minor = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    const cudaError_t e = cudaGetLastError();
    return std::string("querying device properties failed: ") + cudaGetErrorString(e);
  }
  const int cc = 100 * major + 10 * minor;
  int oldest = kBuiltArchs[0];
  std::string built;
  for (int a : kBuiltArchs) {
    oldest = a < oldest ? a : oldest;
    built += (built.empty() ? "sm_" : ", sm_") + std::to_string(a / 10);
  }
  if (cc >= kMinArch && cc >= oldest) return "";
  const int need = oldest > kMinArch ? oldest : kMinArch;
  return "device " + std::to_string(dev) + " (" + prop.name + ") has compute capability " + std::to_string(major) +
         "." + std::to_string(minor) + ", but this build of ember needs " + std::to_string(need / 100) + "." +
         std::to_string(need / 10 % 10) + " or later: its kernels were built for " + built +
         " (CMAKE_CUDA_ARCHITECTURES), and ember supports sm_80 and later only";
}

// Asked once. A machine without a driver, with a driver too old for this toolkit ("CUDA driver
// version is insufficient for CUDA runtime version"), with no device or with a device older than
// the built code is not an error: ember runs on the CPU and says why.
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
        r.reason = unsupported_device();
        r.ok = r.reason.empty();
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
