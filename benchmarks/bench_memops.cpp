// CPU timings of the memory-bound kernels of a training step (kernels/cpu/pool.cpp, elementwise.cpp,
// norm.cpp, optim.cpp) on the Fashion-MNIST classifier's shapes (batch 64: conv 1->32 and 32->64 on
// 28x28 and 14x14, then Linear 3136->128->10). Their correctness is the tests' business
// (tests/test_pool.cpp, test_elementwise.cpp, test_norm.cpp, test_optim.cpp); this program only times
// them: warm-up runs, then the median of several runs (bench_util.h), in ms and in GB/s of the bytes each kernel
// must read and write at least (a kernel near the machine's memory bandwidth cannot go much faster).
// Usage: bench_memops [runs] (default 21). OMP_NUM_THREADS sets the threads.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "core/rng.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/kernels.h"

using namespace ember;

namespace {

int g_runs = 21;

Tensor random(const Shape& s, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Generator gen(seed);
  return rand_uniform(s, gen, Device::CPU, lo, hi);
}

std::string shape_str(const Tensor& t) {
  std::string s = "[";
  for (int d = 0; d < t.dim(); ++d) s += (d ? "," : "") + std::to_string(t.size(d));
  return s + "]";
}

// floats: how many floats the kernel must move (reads + writes).
void row(const std::string& name, const std::string& shape, double floats, const std::function<void()>& f) {
  f();  // a second warm-up (cpu_median_us makes one): first touches of the outputs
  const double ms = bench::cpu_median_us(f, g_runs) / 1000.0;
  std::printf("%-26s %-18s %9.3f %8.1f\n", name.c_str(), shape.c_str(), ms, floats * 4 / (ms * 1e6));
}

void bench_activation(const Shape& s) {
  Tensor x = random(s, 1), dy = random(s, 2), y = Tensor::empty(s), dx = Tensor::empty(s);
  const double n = static_cast<double>(x.numel());
  const std::string sh = shape_str(x);
  row("relu_forward", sh, 2 * n, [&] { cpu::relu_forward(x, y); });
  row("relu_backward", sh, 3 * n, [&] { cpu::relu_backward(x, dy, dx); });
}

void bench_pool(const Shape& s) {
  Tensor x = random(s, 3), dx = Tensor::empty(s);
  Tensor y = Tensor::empty(Shape{s[0], s[1], s[2] / 2, s[3] / 2}), dy = random(y.shape(), 4);
  const double n = static_cast<double>(x.numel());
  const std::string sh = shape_str(x);
  row("maxpool2x2_forward", sh, n * 1.25, [&] { cpu::maxpool2x2_forward(x, y); });
  row("maxpool2x2_backward", sh, n * 2.25, [&] { cpu::maxpool2x2_backward(x, dy, dx); });
}

void bench_bias(const Shape& s) {
  Tensor x = random(s, 5), b = random(Shape{s[1]}, 6), y = Tensor::empty(s), db = Tensor::empty(Shape{s[1]});
  const double n = static_cast<double>(x.numel());
  const std::string sh = shape_str(x);
  row("bias_add", sh, 2 * n, [&] { cpu::bias_add(x, b, y); });
  row("bias_grad", sh, n, [&] { cpu::bias_grad(x, db); });
}

void bench_batchnorm(const Shape& s) {
  const Shape c{s[1]};
  Tensor x = random(s, 7), dy = random(s, 8), y = Tensor::empty(s), dx = Tensor::empty(s);
  Tensor gamma = random(c, 9, 0.5f, 1.5f), beta = random(c, 10), rm = Tensor::zeros(c), rv = Tensor::full(c, 1.0f);
  Tensor mean = Tensor::empty(c), invstd = Tensor::empty(c), dg = Tensor::empty(c), db = Tensor::empty(c);
  const double n = static_cast<double>(x.numel());
  const std::string sh = shape_str(x);
  row("batchnorm_forward_train", sh, 2 * n, [&] {
    cpu::batchnorm_forward_train(x, gamma, beta, 1e-5f, 0.1f, rm, rv, y, mean, invstd);
  });
  row("batchnorm_forward_eval", sh, 2 * n, [&] { cpu::batchnorm_forward_eval(x, gamma, beta, rm, rv, 1e-5f, y); });
  row("batchnorm_backward", sh, 3 * n, [&] { cpu::batchnorm_backward(x, dy, gamma, mean, invstd, dx, dg, db); });
}

// Adam over the classifier's 421,834 parameters, as the optimiser sees them (one tensor each).
void bench_adam() {
  const std::vector<Shape> shapes = {{32, 1, 3, 3}, {32}, {32}, {32}, {64, 32, 3, 3}, {64}, {64},
                                     {64},          {128, 3136}, {128}, {10, 128}, {10}};
  std::vector<Tensor> p, g, m, v;
  double n = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    p.push_back(random(shapes[i], 20 + i));
    g.push_back(random(shapes[i], 40 + i));
    m.push_back(Tensor::zeros(shapes[i]));
    v.push_back(Tensor::zeros(shapes[i]));
    n += static_cast<double>(p.back().numel());
  }
  int64_t step = 0;
  row("adam_update", std::to_string(static_cast<long long>(n)), 7 * n,
      [&] { cpu::adam_update(p, g, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, ++step); });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) g_runs = std::max(1, std::atoi(argv[1]));
  std::printf("bench_memops: kernels' vector path %s, median of %d runs\n", cpu::kernel_vector_path(), g_runs);
  std::printf("%-26s %-18s %9s %8s\n", "kernel", "shape", "ms", "GB/s");
  const Shape conv1{64, 32, 28, 28}, conv2{64, 64, 14, 14};
  bench_activation(conv1);
  bench_pool(conv1);
  bench_pool(conv2);
  bench_bias(conv1);
  bench_bias(Shape{64, 128});
  bench_batchnorm(conv1);
  bench_batchnorm(conv2);
  bench_adam();
  return 0;
}
