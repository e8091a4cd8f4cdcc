// CUDA batch norm against the CPU: training forward (outputs, saved statistics, running
// statistics), eval, backward, over [N, C], [N, C, L] and [N, C, H, W] inputs whose planes take
// every path (flat / per-plane, float4 / scalar, one or many slices per channel).
#include <algorithm>
#include <cmath>

#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test;
using namespace ember::test::gpu;

namespace {

const std::vector<Shape> kShapes = {Shape{2, 1},       Shape{16, 7},        Shape{3, 5, 11},
                                    Shape{4, 3, 8, 8}, Shape{2, 6, 13, 11}, Shape{128, 4, 16, 16},
                                    Shape{2, 3, 130},  Shape{256, 64},      Shape{1, 2, 300, 301}};

}  // namespace

// The bound of the training forward. Any float kernel rounds the mean to u |mean| (u = 2^-24), and
// x - mean carries that error into y = (x - mean) gamma invstd + beta and into the variance; with
// few elements per channel the spread can be small against the mean (shape [2, 1]: two values of
// [9, 11]). So the tolerance is kFp32Tol or, when larger, 8 u || (|x| + |mean|) |gamma| invstd || / ||y||.
double forward_tol(const Tensor& x, const Tensor& gamma, const Tensor& beta) {
  const Shape& s = x.shape();
  const int64_t C = s[1], inner = x.numel() / (s[0] * C);
  Tensor rm = Tensor::zeros(Shape{C}), rv = Tensor::full(Shape{C}, 1.f), y = Tensor::empty(s);
  Tensor mean = Tensor::empty(Shape{C}), invstd = Tensor::empty(Shape{C});
  cpu::batchnorm_forward_train(x, gamma, beta, 1e-5f, 0.1f, rm, rv, y, mean, invstd);
  double size2 = 0, y2 = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = (i / inner) % C;
    const double t = (std::abs(double(x.data()[i])) + std::abs(double(mean.data()[c]))) *
                     std::abs(double(gamma.data()[c])) * invstd.data()[c];
    size2 += t * t;
    y2 += double(y.data()[i]) * y.data()[i];
  }
  return std::max(kFp32Tol, 8 * 0x1p-24 * std::sqrt(size2 / y2));
}

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
                   },
                   forward_tol(x, gamma, beta));
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

// The bound of the backward's dx. dx = gamma invstd / m (m dy - dbeta - xhat dgamma) is a
// difference of terms that nearly balance when a channel has few elements (at m = 2 they cancel
// but for eps: xhat = +-d / sqrt(d^2 + eps)). A float kernel then errs by a few unit roundoffs u of
// the terms' size, not of dx: |error_i| <= ~4 u |gamma invstd / m| (|m dy_i| + |dbeta| + |xhat_i dgamma|)
// (four roundings: the product, two subtractions, the scaling). So the tolerance on
// ||cuda - cpu|| / ||cpu|| is kFp32Tol or, when larger, 8 u ||those sizes|| / ||dx|| (2x margin).
double backward_tol(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean, const Tensor& invstd) {
  const Shape& s = x.shape();
  const int64_t C = s[1], inner = x.numel() / (s[0] * C), m = x.numel() / C;
  Tensor dx = Tensor::empty(s), dg = Tensor::empty(Shape{C}), db = Tensor::empty(Shape{C});
  cpu::batchnorm_backward(x, dy, gamma, mean, invstd, dx, dg, db);
  double size2 = 0, dx2 = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = (i / inner) % C;
    const double xhat = (double(x.data()[i]) - mean.data()[c]) * invstd.data()[c];
    const double t = std::abs(double(gamma.data()[c]) * invstd.data()[c] / m) *
                     (std::abs(double(m) * dy.data()[i]) + std::abs(double(db.data()[c])) + std::abs(xhat * dg.data()[c]));
    size2 += t * t;
    dx2 += double(dx.data()[i]) * dx.data()[i];
  }
  return std::max(kFp32Tol, 8 * 0x1p-24 * std::sqrt(size2 / dx2));
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
                   },
                   backward_tol(x, dy, gamma, mean, invstd));
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
