// Benchmark of the spectral-normalised consumers (issue 12): a layer's forward + backward with
// 1/sigma applied in the bias epilogue (ops::linear_sn, conv2d_sn, conv_transpose2d_sn) against
// the composed path they replace, op(x, spectral_normalized(w), b), which writes W / sigma.
// Both take the same spectral-norm step beforehand (not timed); the gradient of y is a fixed
// random tensor. Shapes: the spectral-normalised layers of the 32x32 SAGAN (width 1) at batch
// --batch: D's strided convolutions and fc, G's fc (no bias) and transposed convolutions (no bias:
// they feed a BatchNorm, so the consumer pays an in-place y / sigma pass the composed path does
// not) and G's output convolution.
// Each row first checks y and the three gradients of the two paths against each other (largest
// relative error printed; above 1e-5 fails the program), then prints the median of --runs
// forward + backward calls of each (the two paths alternating), and "W/sigma" = the W / sigma tensors each path wrote per call
// (ops::spectral_normalized_count). CPU always; CUDA too when a GPU is present (TF32 off, a device
// synchronisation closing each call).
//   usage: bench_sn_consumers [--batch 16] [--runs 7]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "core/autograd.h"
#include "core/context.h"
#include "core/ops.h"
#include "core/rng.h"

using namespace ember;

namespace {

struct Layer {
  std::string name;
  Shape x, w;
  int kind;  // 0 linear, 1 conv2d, 2 conv_transpose2d
  int stride, pad;
  bool bias;
};

double rel(const Tensor& a, const Tensor& b) {
  return bench::rel_err(a.to(Device::CPU).to_vector(), b.to(Device::CPU).to_vector());
}

// Times one layer on one device; returns false when the two paths disagree.
bool run(const Layer& l, int64_t B, Device d, int runs) {
  Generator gen(3);
  Shape xs = l.x;
  xs[0] = B;
  const int dim = l.kind == 2 ? 1 : 0;
  const int64_t out = l.kind == 2 ? l.w[1] : l.w[0], rows = l.w[dim];
  Tensor x = randn(xs, gen).to(d).requires_grad_(true), w = randn(l.w, gen).to(d).requires_grad_(true);
  Tensor b = l.bias ? randn(Shape{out}, gen).to(d).requires_grad_(true) : Tensor();
  ops::SnScale s{dim, randn(Shape{rows}, gen).to(d), randn(Shape{w.numel() / rows}, gen).to(d),
                 Tensor::zeros(Shape{1}, d)};
  ops::spectral_norm_step(w.detach(), dim, s.u, s.v, s.sigma, true);
  auto apply = [&](const Tensor& wt, bool fused) {
    if (l.kind == 0) return fused ? ops::linear_sn(x, wt, b, s) : ops::linear(x, wt, b);
    if (l.kind == 1) return fused ? ops::conv2d_sn(x, wt, b, l.stride, l.pad, s) : ops::conv2d(x, wt, b, l.stride, l.pad);
    return fused ? ops::conv_transpose2d_sn(x, wt, b, l.stride, l.pad, 0, s)
                 : ops::conv_transpose2d(x, wt, b, l.stride, l.pad, 0);
  };
  Tensor dy;
  std::vector<Tensor> res[2];  // y, dx, dw, db of each path
  int64_t formed[2] = {0, 0};
  std::function<void()> call[2];
  for (int fused = 0; fused < 2; ++fused) {
    call[fused] = [&, fused] {
      x.zero_grad(), w.zero_grad();
      if (b.defined()) b.zero_grad();
      Tensor y = fused ? apply(w, true) : apply(ops::spectral_normalized(w, dim, s.u, s.v, s.sigma), false);
      if (!dy.defined()) dy = randn(y.shape(), gen).to(d);
      y.backward(dy);
      res[fused] = {y.detach(), x.grad(), w.grad(), b.defined() ? b.grad() : Tensor()};
      bench::sync(d);
    };
    const int64_t c0 = ops::spectral_normalized_count(d);
    call[fused]();
    formed[fused] = ops::spectral_normalized_count(d) - c0;
  }
  double err = 0;
  for (int i = 0; i < 4; ++i)
    if (res[0][i].defined()) err = std::max(err, rel(res[1][i], res[0][i]));
  // The two paths alternate call by call, so that a change in the machine's load reaches both.
  std::vector<double> t[2];
  for (int i = 0; i < runs; ++i)
    for (int fused = 0; fused < 2; ++fused) {
      const auto a = std::chrono::steady_clock::now();
      call[fused]();
      t[fused].push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - a).count());
    }
  const double t_composed = bench::median(t[0]), t_fused = bench::median(t[1]);
  std::string shape = "x" + xs.str() + " w" + l.w.str();
  std::printf("%-6s %-26s %-34s %14.1f %12.1f %7.2fx %5lld / %-5lld %9.1e\n", d == Device::CPU ? "cpu" : "cuda",
              l.name.c_str(), shape.c_str(), t_composed, t_fused, t_composed / t_fused, (long long)formed[0],
              (long long)formed[1], err);
  return err <= 1e-5;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t B = bench::arg_int(argc, argv, "--batch", 16);
  const int runs = bench::arg_int(argc, argv, "--runs", 7);
  context().allow_tf32 = false;  // the check compares two fp32 paths
  // The spectral-normalised layers of the 32x32 SAGAN at width 1 (models/sagan.cpp).
  const std::vector<Layer> layers = {
      {"D conv 3->64 k4 s2", Shape{0, 3, 32, 32}, Shape{64, 3, 4, 4}, 1, 2, 1, true},
      {"D conv 64->128 k4 s2", Shape{0, 64, 16, 16}, Shape{128, 64, 4, 4}, 1, 2, 1, true},
      {"D conv 128->256 k4 s2", Shape{0, 128, 8, 8}, Shape{256, 128, 4, 4}, 1, 2, 1, true},
      {"D fc 4096->1", Shape{0, 4096}, Shape{1, 4096}, 0, 1, 0, true},
      {"G fc 128->8192 (no bias)", Shape{0, 128}, Shape{8192, 128}, 0, 1, 0, false},
      {"G convT 512->256 (no bias)", Shape{0, 512, 4, 4}, Shape{512, 256, 4, 4}, 2, 2, 1, false},
      {"G convT 256->128 (no bias)", Shape{0, 256, 8, 8}, Shape{256, 128, 4, 4}, 2, 2, 1, false},
      {"G out conv 64->3 k3", Shape{0, 64, 32, 32}, Shape{3, 64, 3, 3}, 1, 1, 1, true},
  };
  std::printf("## spectral-normalised layer, forward + backward: composed W / sigma vs 1/sigma in the epilogue\n");
  std::printf("batch %lld, median of %d calls\n", (long long)B, runs);
  std::printf("%-6s %-26s %-34s %14s %12s %8s %13s %9s\n", "device", "layer", "shape", "composed_us", "fused_us",
              "speedup", "W/sigma c / f", "check");
  bool ok = true;
  std::vector<Device> devices = {Device::CPU};
  if (cuda_available()) devices.push_back(Device::CUDA);
  else std::printf("(CUDA rows skipped: %s)\n", cuda_unavailable_reason().c_str());
  for (Device d : devices)
    for (const Layer& l : layers) ok = run(l, B, d, runs) && ok;
  if (!ok) std::fprintf(stderr, "bench_sn_consumers: the two paths disagree above 1e-5\n");
  return ok ? 0 : 1;
}
