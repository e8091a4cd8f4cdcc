// The CUDA runtime calls of ember's code, over host memory (include/cuda_runtime.h). The one
// stream is synchronous: every launch and copy has finished when the call returns. Device memory
// is host memory from the heap (AddressSanitizer watches it), filled with NaN when allocated.
#include <chrono>
#include <cstdio>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "tests/emulation/emu_internal.h"
#include "tests/emulation/target.h"

namespace ember::emu {
cudaError_t take_last_error();
cudaError_t peek_last_error();
const std::string& last_error_detail();

const Target& target() {
  static const Target t = [] {
    const char* a = std::getenv("EMBER_EMU_ARCH");
    const std::string arch = a ? a : "sm_90";
    if (arch == "sm_80") return Target{"sm_80", 8, 0, 108, 163 * 1024};
    if (arch != "sm_90") throw std::runtime_error("EMBER_EMU_ARCH: sm_80 or sm_90, got " + arch);
    return Target{"sm_90", 9, 0, 132, 227 * 1024};
  }();
  return t;
}
}  // namespace ember::emu

using ember::emu::target;

namespace {
struct Stream {};
std::atomic<size_t> g_allocated{0};
constexpr size_t kDeviceBytes = size_t{80} << 30;  // what cudaMemGetInfo reports (an 80 GB card)
constexpr size_t kHeader = 256;                    // keeps the allocation size; 256-byte alignment
cudaError_t fail(cudaError_t e, const std::string& why) {
  ember::emu::set_last_error(e, why);
  return e;
}
}  // namespace

cudaError_t cudaGetDeviceCount(int* n) { return *n = 1, cudaSuccess; }
cudaError_t cudaGetDevice(int* d) { return *d = 0, cudaSuccess; }
cudaError_t cudaSetDevice(int d) {
  return d == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(d) + ")");
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "device " + std::to_string(device));
  switch (a) {
    case cudaDevAttrMaxThreadsPerBlock: *v = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = 48 * 1024; break;
    case cudaDevAttrMultiProcessorCount: *v = target().sm_count; break;
    case cudaDevAttrComputeCapabilityMajor: *v = target().cc_major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = target().cc_minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = target().smem_optin; break;
    default: return fail(cudaErrorInvalidValue, "device attribute " + std::to_string(a) + " is not emulated");
  }
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice, "device " + std::to_string(device));
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "emulated %s", target().arch.c_str());
  p->major = target().cc_major;
  p->minor = target().cc_minor;
  p->multiProcessorCount = target().sm_count;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = reinterpret_cast<cudaStream_t>(new Stream);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete reinterpret_cast<Stream*>(s);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

struct CUevent_st {
  std::chrono::steady_clock::time_point t{};
  bool recorded = false;
};
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  if (!e) return fail(cudaErrorInvalidValue, "cudaEventRecord: null event");
  e->t = std::chrono::steady_clock::now();
  e->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return e ? cudaSuccess : fail(cudaErrorInvalidValue, "cudaEventSynchronize: null event");
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!a || !b || !a->recorded || !b->recorded)
    return fail(cudaErrorInvalidValue, "cudaEventElapsedTime: an event was never recorded");
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  char* raw = static_cast<char*>(::operator new(kHeader + bytes, std::align_val_t(256), std::nothrow));
  if (!raw) return *p = nullptr, fail(cudaErrorMemoryAllocation, "cudaMalloc(" + std::to_string(bytes) + ")");
  std::memcpy(raw, &bytes, sizeof bytes);
  std::memset(raw + kHeader, 0xff, bytes);  // NaN: memory no kernel wrote reads as NaN
  g_allocated += bytes;
  *p = raw + kHeader;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  char* raw = static_cast<char*>(p) - kHeader;
  size_t bytes;
  std::memcpy(&bytes, raw, sizeof bytes);
  g_allocated -= bytes;
  ::operator delete(raw, std::align_val_t(256));
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *total_bytes = kDeviceBytes;
  *free_bytes = kDeviceBytes - g_allocated.load();
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind k, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, k);
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }
cudaError_t cudaGetLastError() { return ember::emu::take_last_error(); }
cudaError_t cudaPeekAtLastError() { return ember::emu::peek_last_error(); }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    default: return "cudaError";
  }
}
// The runtime's text, followed by the emulator's reason for the last error it set.
const char* cudaGetErrorString(cudaError_t e) {
  const char* text = "unknown error";
  switch (e) {
    case cudaSuccess: text = "no error"; break;
    case cudaErrorInvalidValue: text = "invalid argument"; break;
    case cudaErrorMemoryAllocation: text = "out of memory"; break;
    case cudaErrorInvalidConfiguration: text = "invalid configuration argument"; break;
    case cudaErrorInvalidDevice: text = "invalid device ordinal"; break;
    case cudaErrorLaunchOutOfResources: text = "too many resources requested for launch"; break;
    default: break;
  }
  thread_local std::string s;
  s = text;
  if (e != cudaSuccess && !ember::emu::last_error_detail().empty()) s += " [emulator: " + ember::emu::last_error_detail() + "]";
  return s.c_str();
}
