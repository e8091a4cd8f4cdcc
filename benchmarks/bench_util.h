// Helpers shared by the memory-bound kernel benchmarks (bench_softmax, bench_spectral_norm):
// the result table, CPU medians, and on CUDA: device buffers, event timing with rotated inputs,
// and the measured device-to-device copy bandwidth every GB/s figure is compared with.
//
// Table columns (benchmarks/torch_softmax_sn.py prints the same):
//   op  variant  shape  time_us  GB/s  %copy  check
// GB/s = the bytes the op must move (stated by each program) / median time; %copy = that over
// the measured copy bandwidth (bytes read + written per second); check = the relative error
// against the CPU reference before timing ("-" when not checked).
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "core/device.h"
#ifdef EMBER_WITH_CUDA
#include <cuda_runtime.h>

#include "core/device_memory.h"
#endif

namespace bench {

// Waits for the work queued on ember's device (nothing to wait for on the CPU): the end of a call
// timed on the host clock.
inline void sync(ember::Device d) {
#ifdef EMBER_WITH_CUDA
  if (d == ember::Device::CUDA) ember::cuda_rt::synchronize();
#else
  (void)d;
#endif
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ||out - ref|| / ||ref||; any non-finite output gives +inf.
inline double rel_err(const std::vector<float>& out, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    const double d = static_cast<double>(out[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline void print_header(const char* title) {
  std::printf("\n## %s\n", title);
  std::printf("%-22s %-22s %-22s %12s %10s %8s %10s\n", "op", "variant", "shape", "time_us", "GB/s", "%copy", "check");
}

// copy_gbs <= 0: no copy figure (CPU rows).
inline void print_row(const std::string& op, const std::string& variant, const std::string& shape, double us,
                      double bytes, double copy_gbs, double check) {
  const double gbs = bytes / (us * 1e3);
  char pct[16] = "-", chk[16] = "-";
  if (copy_gbs > 0) std::snprintf(pct, sizeof pct, "%.1f", 100.0 * gbs / copy_gbs);
  if (check >= 0) std::snprintf(chk, sizeof chk, "%.1e", check);
  std::printf("%-22s %-22s %-22s %12.2f %10.1f %8s %10s\n", op.c_str(), variant.c_str(), shape.c_str(), us, gbs, pct,
              chk);
}

// Median wall time in microseconds of `runs` calls after one warm-up call.
inline double cpu_median_us(const std::function<void()>& f, int runs) {
  f();
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
  }
  return median(t);
}

inline int arg_int(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == name) return std::atoi(argv[i + 1]);
  return fallback;
}

#ifdef EMBER_WITH_CUDA

#define BENCH_CUDA(expr)                                                                                  \
  do {                                                                                                    \
    cudaError_t bench_err_ = (expr);                                                                      \
    if (bench_err_ != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "CUDA error %s in %s (%s:%d)\n", cudaGetErrorString(bench_err_), #expr, __FILE__, \
                   __LINE__);                                                                             \
      std::exit(1);                                                                                       \
    }                                                                                                     \
  } while (0)

// A device array of floats (plain cudaMalloc: the benchmark measures kernels, not the allocator).
class DeviceBuf {
 public:
  DeviceBuf() = default;
  explicit DeviceBuf(size_t n) : n_(n) { BENCH_CUDA(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(float))); }
  explicit DeviceBuf(const std::vector<float>& h) : DeviceBuf(h.size()) { upload(h); }
  ~DeviceBuf() {
    if (p_) cudaFree(p_);
  }
  DeviceBuf(DeviceBuf&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceBuf& operator=(DeviceBuf&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  DeviceBuf(const DeviceBuf&) = delete;
  DeviceBuf& operator=(const DeviceBuf&) = delete;

  float* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<float>& h) const {
    BENCH_CUDA(cudaMemcpy(p_, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  std::vector<float> download() const {
    std::vector<float> h(n_);
    BENCH_CUDA(cudaDeviceSynchronize());
    BENCH_CUDA(cudaMemcpy(h.data(), p_, n_ * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
  }
  void fill_nan() const { BENCH_CUDA(cudaMemset(p_, 0xff, n_ * sizeof(float))); }  // 0xffffffff is a NaN

 private:
  float* p_ = nullptr;
  size_t n_ = 0;
};

// How many input sets to rotate through so that together they are three times the L2 (at least
// 2, at most 64: inputs of under ~2 MB stay partly in L2, as they would in a real model).
inline int rotation_sets(double bytes_per_set) {
  int dev = 0, l2 = 0;
  BENCH_CUDA(cudaGetDevice(&dev));
  BENCH_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
  return std::clamp(static_cast<int>(std::ceil(3.0 * l2 / bytes_per_set)), 2, 64);
}

// Median time in microseconds of launch(i) on the default stream, measured by CUDA events around
// each call, after `warmup` calls; i counts calls so the caller can rotate inputs.
inline double gpu_median_us(const std::function<void(int)>& launch, int runs, int warmup = 10) {
  cudaEvent_t a, b;
  BENCH_CUDA(cudaEventCreate(&a));
  BENCH_CUDA(cudaEventCreate(&b));
  int i = 0;
  for (; i < warmup; ++i) launch(i);
  BENCH_CUDA(cudaDeviceSynchronize());
  std::vector<double> t;
  for (int r = 0; r < runs; ++r, ++i) {
    BENCH_CUDA(cudaEventRecord(a, 0));
    launch(i);
    BENCH_CUDA(cudaEventRecord(b, 0));
    BENCH_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
    t.push_back(1e3 * ms);
  }
  BENCH_CUDA(cudaGetLastError());
  BENCH_CUDA(cudaEventDestroy(a));
  BENCH_CUDA(cudaEventDestroy(b));
  return median(t);
}

// The ceiling: device-to-device cudaMemcpy of 256 MB, bytes read + written per second, in GB/s.
inline double copy_bandwidth_gbs(int runs) {
  const size_t n = size_t{64} << 20;  // floats
  DeviceBuf a(n), b(n);
  BENCH_CUDA(cudaMemset(a.get(), 0x3c, n * sizeof(float)));
  const double us = gpu_median_us(
      [&](int) { BENCH_CUDA(cudaMemcpyAsync(b.get(), a.get(), n * sizeof(float), cudaMemcpyDeviceToDevice, 0)); },
      runs);
  return 2.0 * n * sizeof(float) / (us * 1e3);
}

inline void print_device() {
  int dev = 0;
  cudaDeviceProp p{};
  BENCH_CUDA(cudaGetDevice(&dev));
  BENCH_CUDA(cudaGetDeviceProperties(&p, dev));
  std::printf("device: %s, %d SMs, L2 %d MB\n", p.name, p.multiProcessorCount, p.l2CacheSize >> 20);
}

#endif  // EMBER_WITH_CUDA

}  // namespace bench
