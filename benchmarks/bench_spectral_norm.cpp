// Benchmark of spectral normalisation by power iteration (torch.nn.utils.spectral_norm
// semantics, one iteration per training forward).
//
// Variants (the production kernels of kernels/cuda/spectral_norm.cu through
// kernels/cuda/spectral_norm.cuh, never a copy):
//   0 fused fwd        one training forward: power iteration (2 launches) + w / sigma (1 launch)
//   B unfused fwd      the baseline: PyTorch's launch sequence for the same forward, issued through
//                      cuBLAS and small kernels (kernels/cuda/spectral_norm_unfused.cu), 13 launches
//   1 fused step       the power iteration alone (u, v, sigma), for consumers that apply 1/sigma
//   2 fused sigma      eval mode: sigma = u . (Wm v), 1 launch
//   3 fused bwd        dw = (g - <g,w>/sigma u v^T) / sigma, 2 launches
// Each is first run on the same data as the CPU reference (kernels/cpu/spectral_norm.cpp, itself
// checked here against a double-precision step), outputs filled with NaN; the largest relative
// error over u, v, sigma and the output is printed and above 1e-5 fails the program. Then it is
// timed: CUDA events around each call after warm-up, median of --runs calls, rotating through
// enough weight sets that they do not fit in L2 together.
// Bytes: step 2|W| (the two reads of W the target allows), fwd 4|W| (step + read W, write W/sigma),
// sigma |W|, bwd 3|W| (read g and w, write dw); the baseline is charged the fused forward's bytes so
// that GB/s compare like for like. Targets (issue 4): at most two reads of W per step, >= 80% of
// copy bandwidth for large W, >= 5x faster than the unfused sequence.
// Without a GPU the CUDA part is skipped and only the CPU reference is timed.
//   usage: bench_spectral_norm [--runs N] [--cpu-runs N]
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "core/context.h"
#include "core/rng.h"
#include "kernels/kernels.h"
#include "kernels/spectral_norm_layout.h"
#ifdef EMBER_WITH_CUDA
#include <cublas_v2.h>

#include "core/cuda/cuda_context.cuh"
#include "kernels/cuda/spectral_norm.cuh"
#endif

using namespace ember;

namespace {

bool g_failed = false;

struct Case {
  const char* name;
  Shape shape;
  int dim;
};

const Case kCases[] = {
    {"conv 64x3x3x3", Shape{64, 3, 3, 3}, 0},        {"conv 256x256x3x3", Shape{256, 256, 3, 3}, 0},
    {"linear 512x4608", Shape{512, 4608}, 0},        {"convT 512x256x4x4 d1", Shape{512, 256, 4, 4}, 1},
    {"linear 4096x4608", Shape{4096, 4608}, 0},
};

std::vector<float> random_vec(int64_t n, uint64_t seed) {
  Generator gen(seed);
  return rand_uniform(Shape{n}, gen, Device::CPU, -1.f, 1.f).to_vector();
}

std::vector<float> unit_vec(int64_t n, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> v = randn(Shape{n}, gen).to_vector();
  double s = 0;
  for (float e : v) s += static_cast<double>(e) * e;
  for (float& e : v) e = static_cast<float>(e / std::sqrt(s));
  return v;
}

double rel_scalar(float a, float b) { return std::fabs(static_cast<double>(a) - b) / std::fabs(static_cast<double>(b)); }

void note_check(double err, double tol) {
  if (!(err <= tol)) {
    g_failed = true;
    std::printf("  ^ FAILED: relative error %.2e above %.0e\n", err, tol);
  }
}

// One power-iteration step in double on the matrix view, to check the CPU kernel: the largest
// relative error of its u, v and sigma.
double check_cpu_step(const std::vector<float>& w, const SnLayout& l, const std::vector<float>& u0,
                      const std::vector<float>& u1, const std::vector<float>& v1, float sigma1) {
  const int64_t rows = l.rows, cols = l.cols();
  std::vector<double> v(cols, 0.0), t(rows, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) v[c] += static_cast<double>(w[l.at(r, c)]) * u0[r];
  double nv = 0, nt = 0, sigma = 0;
  for (double e : v) nv += e * e;
  for (double& e : v) e /= std::sqrt(nv);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[r] += static_cast<double>(w[l.at(r, c)]) * v[c];
  for (double e : t) nt += e * e;
  nt = std::sqrt(nt);
  std::vector<float> uf(rows), vf(v.begin(), v.end());
  for (int64_t r = 0; r < rows; ++r) uf[r] = static_cast<float>(t[r] / nt), sigma += t[r] / nt * t[r];
  return std::max({bench::rel_err(u1, uf), bench::rel_err(v1, vf), rel_scalar(sigma1, static_cast<float>(sigma))});
}

std::string shape_str(const Case& k) {
  const SnLayout l = sn_layout(k.shape, k.dim);
  return std::to_string(l.rows) + "x" + std::to_string(l.cols()) + (k.dim ? " d1" : "");
}

void cpu_part(int runs) {
  bench::print_header("spectral norm, CPU reference (kernels/cpu/spectral_norm.cpp)");
  for (const Case& k : kCases) {
    const SnLayout l = sn_layout(k.shape, k.dim);
    const double wb = 4.0 * k.shape.numel();
    std::vector<float> wv = random_vec(k.shape.numel(), 1), u0 = unit_vec(l.rows, 2);
    Tensor w = Tensor::from_vector(wv, k.shape), g = Tensor::from_vector(random_vec(k.shape.numel(), 3), k.shape);
    Tensor u = Tensor::from_vector(u0, Shape{l.rows}), v = Tensor::empty(Shape{l.cols()}), s = Tensor::empty(Shape{1});
    Tensor out = Tensor::empty(k.shape), dw = Tensor::empty(k.shape);
    cpu::spectral_norm_power_iteration(w, k.dim, 1e-12f, u, v, s);
    const double err = check_cpu_step(wv, l, u0, u.to_vector(), v.to_vector(), s.item());
    const double ts = bench::cpu_median_us([&] { cpu::spectral_norm_power_iteration(w, k.dim, 1e-12f, u, v, s); }, runs);
    bench::print_row("sn step", "cpu", shape_str(k), ts, 2 * wb, 0, err);
    note_check(err, 1e-6);
    const double tf = bench::cpu_median_us([&] { cpu::spectral_norm_scale(w, s, out); }, runs);
    bench::print_row("sn w/sigma", "cpu", shape_str(k), tf, 2 * wb, 0, -1);
    const double tb = bench::cpu_median_us([&] { cpu::spectral_norm_backward(w, k.dim, u, v, s, g, dw); }, runs);
    bench::print_row("sn bwd", "cpu", shape_str(k), tb, 3 * wb, 0, -1);
  }
}

#ifdef EMBER_WITH_CUDA

#define BENCH_CUBLAS(expr)                                                                  \
  do {                                                                                      \
    if ((expr) != CUBLAS_STATUS_SUCCESS) {                                                  \
      std::fprintf(stderr, "cuBLAS error in %s (%s:%d)\n", #expr, __FILE__, __LINE__);     \
      std::exit(1);                                                                         \
    }                                                                                       \
  } while (0)

// One weight set on the device: w, its u, v, sigma, the forward output and the gradient buffers.
struct Set {
  bench::DeviceBuf w, u, v, sigma, out, g, dw;
};

void gpu_case(const Case& k, cublasHandle_t h, double copy_gbs, int runs) {
  const cudaStream_t st = cuda_rt::stream();  // the launchers accept ember's one stream only
  const SnLayout l = sn_layout(k.shape, k.dim);
  const cuda::SnDims d{l.rows, l.cols(), l.inner};
  const int64_t n = k.shape.numel();
  const double wb = 4.0 * n;
  const std::string shape = shape_str(k);

  // The CPU reference for one step from u0, w / sigma, and the backward.
  const std::vector<float> wv = random_vec(n, 21), gv = random_vec(n, 22), u0 = unit_vec(l.rows, 23);
  Tensor w = Tensor::from_vector(wv, k.shape), g = Tensor::from_vector(gv, k.shape);
  Tensor u = Tensor::from_vector(u0, Shape{l.rows}), v = Tensor::empty(Shape{l.cols()}), s = Tensor::empty(Shape{1});
  Tensor out = Tensor::empty(k.shape), dw = Tensor::empty(k.shape), s_eval = Tensor::empty(Shape{1});
  cpu::spectral_norm_power_iteration(w, k.dim, 1e-12f, u, v, s);
  cpu::spectral_norm_scale(w, s, out);
  cpu::spectral_norm_backward(w, k.dim, u, v, s, g, dw);
  cpu::spectral_norm_sigma(w, k.dim, u, v, s_eval);
  const std::vector<float> u1 = u.to_vector(), v1 = v.to_vector(), out1 = out.to_vector(), dw1 = dw.to_vector();

  const int sets = bench::rotation_sets(2 * wb);
  std::vector<Set> S(sets);
  for (Set& x : S) {
    x.w = bench::DeviceBuf(wv), x.u = bench::DeviceBuf(u0), x.v = bench::DeviceBuf(l.cols());
    x.sigma = bench::DeviceBuf(1), x.out = bench::DeviceBuf(n), x.g = bench::DeviceBuf(gv), x.dw = bench::DeviceBuf(n);
  }
  bench::DeviceBuf ws(cuda::sn_workspace_floats(d)), ws_unfused(cuda::sn_unfused_workspace_floats(d));

  // Check a forward variant from u0 on set 0: u, v, sigma and (if it writes one) the output.
  auto check_forward = [&](bool writes_out, const std::function<void()>& run) {
    S[0].u.upload(u0);
    S[0].v.fill_nan(), S[0].sigma.fill_nan(), S[0].out.fill_nan();
    run();
    double e = std::max({bench::rel_err(S[0].u.download(), u1), bench::rel_err(S[0].v.download(), v1),
                         rel_scalar(S[0].sigma.download()[0], s.item())});
    if (writes_out) e = std::max(e, bench::rel_err(S[0].out.download(), out1));
    S[0].u.upload(u0);
    return e;
  };

  // 0: the fused training forward.
  auto fused_fwd = [&](Set& x) {
    cuda::sn_power_iteration_launch(x.w.get(), d, 1e-12f, x.u.get(), x.v.get(), x.sigma.get(), ws.get(), st);
    cuda::sn_scale_launch(x.w.get(), x.sigma.get(), x.out.get(), n, st);
  };
  double err = check_forward(true, [&] { fused_fwd(S[0]); });
  const double t_fused = bench::gpu_median_us([&](int i) { fused_fwd(S[i % sets]); }, runs);
  bench::print_row("sn fwd (train)", "0 fused", shape, t_fused, 4 * wb, copy_gbs, err);
  note_check(err, 1e-5);

  // B: the unfused PyTorch sequence.
  auto unfused_fwd = [&](Set& x) {
    cuda::sn_unfused_forward(h, x.w.get(), d, 1e-12f, x.u.get(), x.v.get(), x.sigma.get(), x.out.get(),
                              ws_unfused.get(), st);
  };
  err = check_forward(true, [&] { unfused_fwd(S[0]); });
  const double t_unfused = bench::gpu_median_us([&](int i) { unfused_fwd(S[i % sets]); }, runs);
  bench::print_row("sn fwd (train)", "B unfused PyTorch seq", shape, t_unfused, 4 * wb, copy_gbs, err);
  note_check(err, 1e-5);
  std::printf("%-22s fused forward %.2fx faster than the unfused sequence (target >= 5x)\n", "", t_unfused / t_fused);

  // 1: the power iteration alone.
  auto step = [&](Set& x) {
    cuda::sn_power_iteration_launch(x.w.get(), d, 1e-12f, x.u.get(), x.v.get(), x.sigma.get(), ws.get(), st);
  };
  err = check_forward(false, [&] { step(S[0]); });
  const double t_step = bench::gpu_median_us([&](int i) { step(S[i % sets]); }, runs);
  bench::print_row("sn step", "1 fused (2 launches)", shape, t_step, 2 * wb, copy_gbs, err);
  note_check(err, 1e-5);

  // 2 and 3 run from the CPU's u1, v1 and sigma, so every set gets them.
  for (Set& x : S) x.u.upload(u1), x.v.upload(v1), x.sigma.upload(s.to_vector());
  S[0].sigma.fill_nan();
  cuda::sn_sigma_launch(S[0].w.get(), d, S[0].u.get(), S[0].v.get(), S[0].sigma.get(), ws.get(), st);
  err = rel_scalar(S[0].sigma.download()[0], s_eval.item());
  const double t_sigma = bench::gpu_median_us(
      [&](int i) {
        Set& x = S[i % sets];
        cuda::sn_sigma_launch(x.w.get(), d, x.u.get(), x.v.get(), x.dw.get(), ws.get(), st);  // sigma into scratch
      },
      runs);
  bench::print_row("sn sigma (eval)", "2 fused (1 launch)", shape, t_sigma, wb, copy_gbs, err);
  note_check(err, 1e-5);
  S[0].sigma.upload(s.to_vector());

  S[0].dw.fill_nan();
  auto bwd = [&](Set& x) {
    cuda::sn_backward_launch(x.w.get(), d, x.u.get(), x.v.get(), x.sigma.get(), x.g.get(), x.dw.get(), ws.get(), st);
  };
  bwd(S[0]);
  err = bench::rel_err(S[0].dw.download(), dw1);
  const double t_bwd = bench::gpu_median_us([&](int i) { bwd(S[i % sets]); }, runs);
  bench::print_row("sn bwd", "3 fused (2 launches)", shape, t_bwd, 3 * wb, copy_gbs, err);
  note_check(err, 1e-5);
}

void gpu_part(int runs) {
  bench::print_device();
  const double copy_gbs = bench::copy_bandwidth_gbs(runs);
  std::printf("device-to-device copy: %.1f GB/s (bytes read + written)\n", copy_gbs);
  cublasHandle_t h = nullptr;
  BENCH_CUBLAS(cublasCreate(&h));
  bench::print_header("spectral norm, CUDA (kernels/cuda/spectral_norm.cu)");
  for (const Case& k : kCases) gpu_case(k, h, copy_gbs, runs);
  BENCH_CUBLAS(cublasDestroy(h));
}
#endif

}  // namespace

int main(int argc, char** argv) {
  [[maybe_unused]] const int runs = bench::arg_int(argc, argv, "--runs", 200);
  const int cpu_runs = bench::arg_int(argc, argv, "--cpu-runs", 5);
#ifdef EMBER_WITH_CUDA
  if (cuda_available()) {
    gpu_part(runs);
  } else {
    std::printf("CUDA part skipped: %s\n", cuda_unavailable_reason().c_str());
  }
#else
  std::printf("CUDA part skipped: ember was built without the CUDA backend\n");
#endif
  cpu_part(cpu_runs);
  if (g_failed) std::printf("\nFAILED: a variant disagreed with the reference (see above)\n");
  return g_failed ? 1 : 0;
}
