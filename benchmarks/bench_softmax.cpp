// Benchmark of softmax over the last dimension, forward and backward.
//
// Variants (the production kernels of kernels/cuda/softmax.cu through kernels/cuda/softmax.cuh,
// never a copy):
//   0 auto             what ember::cuda::softmax_* run: the variant picked by row length
//   1 warp-registers   a warp (or lane group) per row, row in registers (rows <= 1024)
//   2 block-shared     a block per row, row cached in shared memory
//   3 block-streaming  a block per row, two passes over device memory, online max/sum
// Each variant is first run once on the same input as the CPU reference (kernels/cpu/softmax.cpp,
// itself checked against a naive double computation here), outputs filled with NaN beforehand;
// the relative error is printed and any error above 1e-5 fails the program. Then it is timed:
// CUDA events around each launch after warm-up, median of --runs launches, rotating through
// enough input sets that they do not fit in L2 together.
// Bytes: forward reads x and writes y (8 bytes per element), backward reads y and dy and writes dx
// (12). %copy compares with a device-to-device cudaMemcpy measured in the same run.
// Target (issue 4): >= 90% of copy bandwidth for rows of 1024 and 4096 at large row counts.
// Without a GPU the CUDA part is skipped and only the CPU reference is timed.
//   usage: bench_softmax [--runs N] [--cpu-runs N]
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "core/context.h"
#include "core/rng.h"
#include "kernels/kernels.h"
#ifdef EMBER_WITH_CUDA
#include "core/cuda/cuda_context.cuh"
#include "kernels/cuda/softmax.cuh"
#endif

using namespace ember;

namespace {

bool g_failed = false;

std::vector<float> random_vec(int64_t n, uint64_t seed, float lo, float hi) {
  Generator gen(seed);
  return rand_uniform(Shape{n}, gen, Device::CPU, lo, hi).to_vector();
}

std::string shape_str(int64_t rows, int64_t cols) { return std::to_string(rows) + "x" + std::to_string(cols); }

// The CPU kernels against a naive double computation on the first few rows.
double check_cpu(const std::vector<float>& x, const std::vector<float>& y, const std::vector<float>& dy,
                 const std::vector<float>& dx, int64_t rows, int64_t cols) {
  double worst = 0;
  for (int64_t r = 0; r < std::min<int64_t>(rows, 4); ++r) {
    const float* xr = &x[r * cols];
    double m = -INFINITY, s = 0, dot = 0;
    for (int64_t c = 0; c < cols; ++c) m = std::max(m, static_cast<double>(xr[c]));
    for (int64_t c = 0; c < cols; ++c) s += std::exp(xr[c] - m);
    std::vector<float> yo(y.begin() + r * cols, y.begin() + (r + 1) * cols), yr(cols);
    for (int64_t c = 0; c < cols; ++c) yr[c] = static_cast<float>(std::exp(xr[c] - m) / s);
    for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(y[r * cols + c]) * dy[r * cols + c];
    std::vector<float> go(dx.begin() + r * cols, dx.begin() + (r + 1) * cols), gr(cols);
    for (int64_t c = 0; c < cols; ++c) gr[c] = static_cast<float>(y[r * cols + c] * (dy[r * cols + c] - dot));
    worst = std::max({worst, bench::rel_err(yo, yr), bench::rel_err(go, gr)});
  }
  return worst;
}

void note_check(double err, double tol) {
  if (!(err <= tol)) {
    g_failed = true;
    std::printf("  ^ FAILED: relative error %.2e above %.0e\n", err, tol);
  }
}

void cpu_part(int runs) {
  bench::print_header("softmax, CPU reference (kernels/cpu/softmax.cpp)");
  const std::pair<int64_t, int64_t> shapes[] = {{4096, 1024}, {1024, 4096}, {16, 100003}};
  for (auto [rows, cols] : shapes) {
    const int64_t n = rows * cols;
    Tensor x = Tensor::from_vector(random_vec(n, 1, -8.f, 8.f), Shape{rows, cols});
    Tensor dy = Tensor::from_vector(random_vec(n, 2, -1.f, 1.f), Shape{rows, cols});
    Tensor y = Tensor::empty(x.shape()), dx = Tensor::empty(x.shape());
    cpu::softmax_forward(x, y);
    cpu::softmax_backward(y, dy, dx);
    const double err = check_cpu(x.to_vector(), y.to_vector(), dy.to_vector(), dx.to_vector(), rows, cols);
    const double tf = bench::cpu_median_us([&] { cpu::softmax_forward(x, y); }, runs);
    bench::print_row("softmax fwd", "cpu", shape_str(rows, cols), tf, 8.0 * n, 0, err);
    note_check(err, 1e-6);
    const double tb = bench::cpu_median_us([&] { cpu::softmax_backward(y, dy, dx); }, runs);
    bench::print_row("softmax bwd", "cpu", shape_str(rows, cols), tb, 12.0 * n, 0, err);
  }
}

#ifdef EMBER_WITH_CUDA
using cuda::SoftmaxVariant;

std::string variant_label(SoftmaxVariant v, int64_t cols, bool backward) {
  const int idx = static_cast<int>(v);
  if (v == SoftmaxVariant::Auto)
    return "0 auto=" + std::string(cuda::softmax_variant_name(cuda::softmax_pick(cols, backward)));
  return std::to_string(idx) + " " + cuda::softmax_variant_name(v);
}

bool takes(SoftmaxVariant v, int64_t cols, bool backward) {
  const int64_t limit = cuda::softmax_max_cols(v, backward);
  return limit < 0 || cols <= limit;
}

const SoftmaxVariant kVariants[] = {SoftmaxVariant::Auto, SoftmaxVariant::WarpRegisters, SoftmaxVariant::BlockShared,
                                    SoftmaxVariant::BlockStreaming};

void gpu_shape(int64_t rows, int64_t cols, double copy_gbs, int runs) {
  const cudaStream_t st = cuda_rt::stream();  // the launchers accept ember's one stream only
  const int64_t n = rows * cols;
  const std::string shape = shape_str(rows, cols);
  std::vector<float> x = random_vec(n, 11 + cols, -8.f, 8.f), dy = random_vec(n, 12 + cols, -1.f, 1.f);
  Tensor yref = Tensor::empty(Shape{rows, cols}), dxref = Tensor::empty(Shape{rows, cols});
  cpu::softmax_forward(Tensor::from_vector(x, Shape{rows, cols}), yref);
  cpu::softmax_backward(yref, Tensor::from_vector(dy, Shape{rows, cols}), dxref);
  const std::vector<float> y = yref.to_vector(), dx = dxref.to_vector();

  // Forward: sets of (x, y), rotated.
  {
    const int sets = bench::rotation_sets(8.0 * n);
    std::vector<bench::DeviceBuf> xs, ys;
    for (int s = 0; s < sets; ++s) xs.emplace_back(x), ys.emplace_back(n);
    for (SoftmaxVariant v : kVariants) {
      if (!takes(v, cols, false)) continue;
      ys[0].fill_nan();
      cuda::softmax_forward_launch(xs[0].get(), ys[0].get(), rows, cols, v, st);
      const double err = bench::rel_err(ys[0].download(), y);
      const double us = bench::gpu_median_us(
          [&](int i) { cuda::softmax_forward_launch(xs[i % sets].get(), ys[i % sets].get(), rows, cols, v, st); },
          runs);
      bench::print_row("softmax fwd", variant_label(v, cols, false), shape, us, 8.0 * n, copy_gbs, err);
      note_check(err, 1e-5);
    }
  }
  // Backward: sets of (y, dy, dx), rotated.
  {
    const int sets = bench::rotation_sets(12.0 * n);
    std::vector<bench::DeviceBuf> ys, dys, dxs;
    for (int s = 0; s < sets; ++s) ys.emplace_back(y), dys.emplace_back(dy), dxs.emplace_back(n);
    for (SoftmaxVariant v : kVariants) {
      if (!takes(v, cols, true)) continue;
      dxs[0].fill_nan();
      cuda::softmax_backward_launch(ys[0].get(), dys[0].get(), dxs[0].get(), rows, cols, v, st);
      const double err = bench::rel_err(dxs[0].download(), dx);
      const double us = bench::gpu_median_us(
          [&](int i) {
            const int s = i % sets;
            cuda::softmax_backward_launch(ys[s].get(), dys[s].get(), dxs[s].get(), rows, cols, v, st);
          },
          runs);
      bench::print_row("softmax bwd", variant_label(v, cols, true), shape, us, 12.0 * n, copy_gbs, err);
      note_check(err, 1e-5);
    }
  }
}

void gpu_part(int runs) {
  bench::print_device();
  const double copy_gbs = bench::copy_bandwidth_gbs(runs);
  std::printf("device-to-device copy: %.1f GB/s (bytes read + written)\n", copy_gbs);
  bench::print_header("softmax, CUDA (kernels/cuda/softmax.cu)");
  const std::pair<int64_t, int64_t> shapes[] = {{262144, 32},  {131072, 100}, {32768, 1024}, {65536, 1024},
                                                {8192, 4096},  {16384, 4096}, {2048, 16384}, {512, 100003},
                                                {64, 1048576}};
  for (auto [rows, cols] : shapes) gpu_shape(rows, cols, copy_gbs, runs);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  [[maybe_unused]] const int runs = bench::arg_int(argc, argv, "--runs", 100);
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
