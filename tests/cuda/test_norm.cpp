// CUDA batch norm against the CPU: training forward (outputs, saved statistics, running
// statistics), eval, backward, over [N, C], [N, C, L] and [N, C, H, W] inputs whose planes take
// every path (flat / per-plane, float4 / scalar, one or many slices per channel).
#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test;
using namespace ember::test::gpu;

namespace {

const std::vector<Shape> kShapes = {Shape{2, 1},       Shape{16, 7},        Shape{3, 5, 11},
                                    Shape{4, 3, 8, 8}, Shape{2, 6, 13, 11}, Shape{128, 4, 16, 16},
                                    Shape{2, 3, 130},  Shape{256, 64},      Shape{1, 2, 300, 301}};

}  // namespace

TEST_CASE("norm: training forward matches the CPU, with running statistics", "[cuda][norm]") {
  uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    const int64_t C = s[1];
    // An offset mean (10) checks the variance does not cancel; std ~ 0.6.
    Tensor x = random_tensor(s, seed++, 9.f, 11.f);
    Tensor gamma = random_tensor(Shape{C}, seed++, 0.5f, 1.5f), beta = random_tensor(Shape{C}, seed++);
    Tensor rm = random_tensor(Shape{C}, seed++), rv = random_tensor(Shape{C}, seed++, 0.5f, 2.f);
    compare_kernel("batchnorm_forward_train " + s.str(), {x, gamma, beta},
                   {rm, rv, nan_tensor(s), nan_tensor(Shape{C}), nan_tensor(Shape{C})},
                   [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                     EMBER_DISPATCH("t", d, batchnorm_forward_train, i[0], i[1], i[2], 1e-5f, 0.1f, o[0], o[1], o[2],
                                    o[3], o[4]);
                   });
  }
}

TEST_CASE("norm: eval forward matches the CPU", "[cuda][norm]") {
  uint64_t seed = 100;
  for (const Shape& s : kShapes) {
    const int64_t C = s[1];
    Tensor x = random_tensor(s, seed++, -3.f, 3.f);
    Tensor gamma = random_tensor(Shape{C}, seed++), beta = random_tensor(Shape{C}, seed++);
    Tensor rm = random_tensor(Shape{C}, seed++), rv = random_tensor(Shape{C}, seed++, 0.1f, 2.f);
    compare_kernel("batchnorm_forward_eval " + s.str(), {x, gamma, beta, rm, rv}, {nan_tensor(s)},
                   [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                     EMBER_DISPATCH("t", d, batchnorm_forward_eval, i[0], i[1], i[2], i[3], i[4], 1e-5f, o[0]);
                   });
  }
}

TEST_CASE("norm: backward matches the CPU", "[cuda][norm]") {
  uint64_t seed = 200;
  for (const Shape& s : kShapes) {
    const int64_t C = s[1];
    Tensor x = random_tensor(s, seed++, -2.f, 3.f), dy = random_tensor(s, seed++);
    Tensor gamma = random_tensor(Shape{C}, seed++, 0.5f, 1.5f), beta = random_tensor(Shape{C}, seed++);
    // The saved statistics come from a CPU training forward of the same x.
    Tensor rm = Tensor::zeros(Shape{C}), rv = Tensor::full(Shape{C}, 1.f), y = Tensor::empty(s);
    Tensor mean = Tensor::empty(Shape{C}), invstd = Tensor::empty(Shape{C});
    cpu::batchnorm_forward_train(x, gamma, beta, 1e-5f, 0.1f, rm, rv, y, mean, invstd);
    compare_kernel("batchnorm_backward " + s.str(), {x, dy, gamma, mean, invstd},
                   {nan_tensor(s), nan_tensor(Shape{C}), nan_tensor(Shape{C})},
                   [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                     EMBER_DISPATCH("t", d, batchnorm_backward, i[0], i[1], i[2], i[3], i[4], o[0], o[1], o[2]);
                   });
  }
}

TEST_CASE("norm: batch_norm op values and gradients in training and eval modes", "[cuda][norm][autograd]") {
  Tensor x = random_tensor(Shape{6, 4, 5, 3}, 1), g = random_tensor(Shape{4}, 2, 0.5f, 1.5f),
         b = random_tensor(Shape{4}, 3);
  for (bool training : {true, false}) {
    // Each run starts from its own copy of the running statistics.
    auto f = [training](const std::vector<Tensor>& v) {
      Tensor rm = Tensor::full(Shape{4}, 0.1f, v[0].device()), rv = Tensor::full(Shape{4}, 1.5f, v[0].device());
      return ops::batch_norm(v[0], v[1], v[2], rm, rv, training);
    };
    compare_op(training ? "batch_norm train" : "batch_norm eval", f, {x, g, b});
  }
}
