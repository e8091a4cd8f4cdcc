// Benchmark of the SAGAN self-attention block as one op (ops::self_attention_block,
// kernels/attention_block.inc) against the composed ops it replaces
// (ops::self_attention_block_composed: three spectral-normalised 1x1 conv2d, max_pool2x2,
// attention, the output conv2d, gamma_residual), forward + backward, at the models' real shapes,
// batch 64 (--b): the SAGAN 128 and 64 models' G and D (article block, C = 64 at 32x32), the 32
// model's (C = 128 at 16x16), the ResNet models' (official block: G C = 256 and D C = 128 at
// 32x32; the 32 model's G C = 512 at 16x16).
// Per row: median time of forward + backward (the spectral-norm step is outside, as both paths
// share it) and the kernel calls per block from the op profiler (on CUDA each is at least one
// launch). The bytes each pass moves are counted in docs/kernels.md ("The fused block").
// CPU rows are measured wherever this runs; CUDA rows only where a GPU is (otherwise the table
// says "to be measured by the GPU check"). Before timing, the fused output is checked against
// the composed one (relative error in the last column).
// First, the cost of recomputing att against keeping it (the article epilogue's decision).
//   usage: bench_attention_block [--b B] [--reps R] [--blocks 0: that first table only]
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "core/autograd.h"
#include "core/context.h"
#include "core/ops.h"
#include "core/profile.h"
#include "core/rng.h"
#include "core/tensor.h"

using namespace ember;

namespace {

struct Case {
  const char* model;
  int64_t C, H, W;
  bool official;
};

struct Block {
  ops::BlockProjection f, g, h, o;
  Tensor gamma;
};

Tensor uniform(const Shape& s, Generator& gen, float bound, Device d) { return rand_uniform(s, gen, d, -bound, bound); }

ops::BlockProjection projection(int64_t in, int64_t out, bool bias, Generator& gen, Device d) {
  ops::BlockProjection p;
  const float bound = 1.0f / std::sqrt(static_cast<float>(in));
  p.weight = uniform(Shape{out, in, 1, 1}, gen, bound, d).requires_grad_(true);
  if (bias) p.bias = uniform(Shape{out}, gen, bound, d).requires_grad_(true);
  p.u = uniform(Shape{out}, gen, 1.0f, d);
  p.v = uniform(Shape{in}, gen, 1.0f, d);
  p.sigma = Tensor::zeros(Shape{1}, d);
  ops::spectral_norm_step(p.weight, 0, p.u, p.v, p.sigma, true);
  return p;
}

Block make_block(const Case& c, Device d) {
  Generator gen(7);
  Block b;
  const int64_t dk = c.C / 8, dv = c.official ? c.C / 2 : c.C;
  b.f = projection(c.C, dk, !c.official, gen, d);
  b.g = projection(c.C, dk, false, gen, d);
  b.h = projection(c.C, dv, !c.official, gen, d);
  if (c.official) b.o = projection(dv, c.C, false, gen, d);
  b.gamma = Tensor::full(Shape{1}, 0.5f, d).requires_grad_(true);
  return b;
}

Tensor run(Block& b, const Tensor& x, bool official, bool fused) {
  return fused ? ops::self_attention_block(x, b.f, b.g, b.h, b.o, b.gamma, official)
               : ops::self_attention_block_composed(x, b.f, b.g, b.h, b.o, b.gamma, official);
}

void sync(Device d) {
  if (d == Device::CUDA) Tensor::zeros(Shape{1}, d).item();  // waits for the stream
}

// Kernel calls of one forward + backward, from the op profiler's table (calls columns).
int64_t kernel_calls(const std::function<void()>& step) {
  profile::enable();
  profile::reset();
  step();
  const std::string table = profile::report();
  profile::disable();
  profile::reset();
  int64_t calls = 0;
  std::istringstream in(table);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream w(line);
    std::string name, fms, fcalls, bms, bcalls;
    if (!(w >> name >> fms >> fcalls >> bms >> bcalls)) continue;
    try {
      std::stod(fms);
      calls += std::stoll(fcalls) + std::stoll(bcalls);
    } catch (...) {
    }
  }
  return calls;
}

void bench_device(Device d, const std::vector<Case>& cases, int64_t B, int reps) {
  for (const Case& c : cases) {
    Block b = make_block(c, d);
    Generator gen(11);
    Tensor x = uniform(Shape{B, c.C, c.H, c.W}, gen, 1.0f, d).requires_grad_(true);
    Tensor R = uniform(x.shape(), gen, 1.0f, d);
    double check;
    {
      NoGradGuard ng;
      Tensor yf = run(b, x, c.official, true), yc = run(b, x, c.official, false);
      check = bench::rel_err(yf.to_vector(), yc.to_vector());
    }
    char shape[64];
    std::snprintf(shape, sizeof shape, "B%lld C%lld %lldx%lld", static_cast<long long>(B), static_cast<long long>(c.C),
                  static_cast<long long>(c.H), static_cast<long long>(c.W));
    for (bool fused : {false, true}) {
      auto step = [&] {
        ops::sum(ops::mul(run(b, x, c.official, fused), R)).backward();
        sync(d);
      };
      const int64_t calls = kernel_calls(step);
      const double us = bench::cpu_median_us(step, reps);
      char chk[16] = "-";
      if (fused) std::snprintf(chk, sizeof chk, "%.1e", check);
      std::printf("%-4s %-12s %-9s %-18s %-9s %10.1f %6lld %9s\n", d == Device::CPU ? "cpu" : "cuda", c.model,
                  c.official ? "official" : "article", shape, fused ? "fused" : "composed", us / 1e3,
                  static_cast<long long>(calls), chk);
    }
  }
}

// The article epilogue's decision (kernels/cuda/attention_block.cu, docs/kernels.md "The fused
// block"): backward needs att; recomputing it costs an attention forward, keeping it a write and a
// read of att. Times both at the article's 32x32 map (C = 64: dk = 8, dv = 64, N = M = 1024).
void bench_recompute(Device d, int64_t B, int reps) {
  Generator gen(13);
  const int64_t dk = 8, dv = 64, N = 1024;
  Tensor q = uniform(Shape{B, dk, N}, gen, 1.0f, d), k = uniform(Shape{B, dk, N}, gen, 1.0f, d);
  Tensor v = uniform(Shape{B, dv, N}, gen, 1.0f, d);
  NoGradGuard ng;
  Tensor att = ops::attention(q, k, v);
  const double fwd = bench::cpu_median_us([&] { Tensor o = ops::attention(q, k, v); sync(d); }, reps);
  const double copy = bench::cpu_median_us([&] { Tensor c = att.clone(); sync(d); }, reps);
  std::printf("%-4s B%lld dk%lld dv%lld N=M=%lld: attention forward %.3f ms, copy of att (%.1f MB) %.3f ms: x%.0f\n",
              d == Device::CPU ? "cpu" : "cuda", static_cast<long long>(B), static_cast<long long>(dk),
              static_cast<long long>(dv), static_cast<long long>(N), fwd / 1e3, 4e-6 * B * dv * N, copy / 1e3,
              fwd / copy);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t B = bench::arg_int(argc, argv, "--b", 64);
  const int reps = bench::arg_int(argc, argv, "--reps", 3);
  const bool blocks = bench::arg_int(argc, argv, "--blocks", 1) != 0;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // rows appear as they are measured
  std::printf("## att kept for backward or recomputed (the article epilogue)\n");
  bench_recompute(Device::CPU, B, reps);
#ifdef EMBER_WITH_CUDA
  if (cuda_available()) bench_recompute(Device::CUDA, B, reps);
#endif
  if (!blocks) return 0;
  const std::vector<Case> cases = {
      {"SAGAN-128/64", 64, 32, 32, false}, {"SAGAN-32", 128, 16, 16, false}, {"ResNet-G", 256, 32, 32, true},
      {"ResNet-D", 128, 32, 32, true},     {"ResNet-G-32", 512, 16, 16, true},
  };
  std::printf("## self-attention block, forward + backward (spectral-norm step excluded)\n");
  std::printf("%-4s %-12s %-9s %-18s %-9s %10s %6s %9s\n", "dev", "model", "variant", "shape", "path", "time_ms",
              "calls", "check");
  bench_device(Device::CPU, cases, B, reps);
#ifdef EMBER_WITH_CUDA
  if (cuda_available()) {
    bench_device(Device::CUDA, cases, B, reps);
    return 0;
  }
#endif
  std::printf("cuda rows: to be measured by the GPU check (no GPU here)\n");
  return 0;
}
