// CPU timings of the GEMM and convolution kernels (kernels/cpu/gemm.cpp, conv.cpp).
//
// Each row is first checked against the naive double-precision references of tests/reference.h
// on a smaller case of the same kind (relative error printed; the program fails above 1e-4),
// then timed: warm-up runs, then the median of several runs, reported in ms and GFLOP/s.
// The convolutions run on detail::gemm (OpenBLAS when linked); "gemm fallback" is the built-in
// blocked kernel. Usage: bench_cpu [runs] (default 7). OMP_NUM_THREADS / OPENBLAS_NUM_THREADS
// set the threads.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/rng.h"
#include "kernels/cpu/gemm_fallback.h"
#include "kernels/kernels.h"
#include "tests/reference.h"

using namespace ember;

namespace {

int g_runs = 7;
bool g_failed = false;

Tensor random(const Shape& s, uint64_t seed) {
  Generator gen(seed);
  return rand_uniform(s, gen, Device::CPU, -1.f, 1.f);
}

double rel_err(const std::vector<float>& out, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Median wall time of f in milliseconds after two warm-up calls.
double median_ms(const std::function<void()>& f) {
  f();
  f();
  std::vector<double> ms;
  for (int i = 0; i < g_runs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

void row(const std::string& name, const std::string& shape, double flops, double check, double ms) {
  const bool ok = check < 1e-4;
  g_failed = g_failed || !ok;
  std::printf("%-26s %-36s %10.3f %9.1f   %.1e%s\n", name.c_str(), shape.c_str(), ms, flops / (ms * 1e6), check,
              ok ? "" : "  FAILED");
}

// ---- GEMM ---------------------------------------------------------------------------------------

using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                        float, float*, int64_t);

// Worst error over the four transpose combinations at 67 x 45 x 289 (crosses the fallback's blocks).
double check_gemm(GemmFn gemm) {
  const int64_t M = 67, N = 45, K = 289;
  double worst = 0;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    std::vector<float> a = random(Shape{M * K}, 1 + t).to_vector(), b = random(Shape{K * N}, 5 + t).to_vector();
    std::vector<float> c(M * N);
    gemm(ta, tb, M, N, K, 1.0f, a.data(), ta ? M : K, b.data(), tb ? K : N, 0.0f, c.data(), N);
    worst = std::max(worst, rel_err(c, test::ref::gemm(ta, tb, M, N, K, 1.0, a, ta ? M : K, b, tb ? K : N, 0.0, c, N)));
  }
  return worst;
}

void bench_gemm(const char* name, GemmFn gemm, int64_t n) {
  const double check = check_gemm(gemm);
  std::vector<float> a = random(Shape{n * n}, 11).to_vector(), b = random(Shape{n * n}, 12).to_vector(), c(n * n);
  const double ms = median_ms([&] { gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n); });
  row(name, std::to_string(n) + "^3", 2.0 * n * n * n, check, ms);
}

// ---- convolution ----------------------------------------------------------------------------------

struct ConvTensors {
  test::ref::ConvShape s;
  Tensor x, w, y, dy, dx, dw;
  explicit ConvTensors(const test::ref::ConvShape& c, uint64_t seed)
      : s(c),
        x(random(Shape{c.N, c.Ci, c.H, c.W}, seed)),
        w(random(Shape{c.Co, c.Ci, c.KH, c.KW}, seed + 1)),
        y(Tensor::empty(Shape{c.N, c.Co, c.Ho(), c.Wo()})),
        dy(random(y.shape(), seed + 2)),
        dx(Tensor::empty(x.shape())),
        dw(Tensor::empty(w.shape())) {}
  void forward() { cpu::conv2d_forward(x, w, s.stride, s.pad, y); }
  void backward_data() { cpu::conv2d_backward_data(dy, w, s.stride, s.pad, dx); }
  void backward_filter() { cpu::conv2d_backward_filter(x, dy, s.stride, s.pad, dw); }
};

void bench_conv(const std::string& name, const test::ref::ConvShape& c) {
  // The check: same kernel, stride and padding; 2 images, at most 5 -> 7 channels, at most 12x12.
  test::ref::ConvShape small = c;
  small.N = 2;
  small.Ci = std::min<int64_t>(c.Ci, 5);
  small.Co = std::min<int64_t>(c.Co, 7);
  small.H = std::min<int64_t>(c.H, 12);
  small.W = std::min<int64_t>(c.W, 12);
  ConvTensors t(small, 21);
  t.forward();
  t.backward_data();
  t.backward_filter();
  const std::vector<float> xv = t.x.to_vector(), wv = t.w.to_vector(), dyv = t.dy.to_vector();
  const double err_fwd = rel_err(t.y.to_vector(), test::ref::conv_forward(small, xv, wv));
  const double err_bd = rel_err(t.dx.to_vector(), test::ref::conv_backward_data(small, dyv, wv));
  const double err_bf = rel_err(t.dw.to_vector(), test::ref::conv_backward_filter(small, xv, dyv));

  ConvTensors big(c, 31);
  char shape[96];
  std::snprintf(shape, sizeof shape, "N%lld %lld->%lld %lldx%lld k%lld s%d p%d", (long long)c.N, (long long)c.Ci,
                (long long)c.Co, (long long)c.H, (long long)c.W, (long long)c.KH, c.stride, c.pad);
  const double flops = 2.0 * c.N * c.Co * c.Ho() * c.Wo() * c.Ci * c.KH * c.KW;
  row(name + " fwd", shape, flops, err_fwd, median_ms([&] { big.forward(); }));
  row(name + " bwd data", shape, flops, err_bd, median_ms([&] { big.backward_data(); }));
  row(name + " bwd filter", shape, flops, err_bf, median_ms([&] { big.backward_filter(); }));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) g_runs = std::max(5, std::atoi(argv[1]));
#ifdef _OPENMP
  const int threads = omp_get_max_threads();
#else
  const int threads = 1;
#endif
#ifdef EMBER_WITH_CBLAS
  const char* blas = "OpenBLAS (cblas_sgemm)";
#else
  const char* blas = "none: built-in fallback";
#endif
  std::printf("ember CPU benchmark: %d OpenMP threads, BLAS %s, median of %d runs after 2 warm-ups\n\n", threads, blas,
              g_runs);
  std::printf("%-26s %-36s %10s %9s   %s\n", "kernel", "shape", "ms", "GFLOP/s", "check (rel err)");

#ifdef EMBER_WITH_CBLAS
  bench_gemm("gemm cblas", cpu::detail::gemm, 512);
  bench_gemm("gemm cblas", cpu::detail::gemm, 1024);
#endif
  bench_gemm("gemm fallback", cpu::detail::gemm_fallback, 512);
  bench_gemm("gemm fallback", cpu::detail::gemm_fallback, 1024);

  // {N, Ci, H, W, Co, KH, KW, stride, pad}
  bench_conv("conv 3x3", {16, 64, 32, 32, 128, 3, 3, 1, 1});
  // The SAGAN discriminator's first layers on 64x64 images: 4x4 stride 2 pad 1 halves the size.
  bench_conv("sagan D l1", {16, 3, 64, 64, 64, 4, 4, 2, 1});
  bench_conv("sagan D l2", {16, 64, 32, 32, 128, 4, 4, 2, 1});
  bench_conv("sagan D l3", {16, 128, 16, 16, 256, 4, 4, 2, 1});
  // A self-attention projection (1x1, C -> C/8): the GEMM shortcut.
  bench_conv("attn 1x1", {16, 256, 8, 8, 32, 1, 1, 1, 0});
  return g_failed ? 1 : 0;
}
