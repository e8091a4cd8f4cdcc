// Pooling and upsampling: CPU kernels against naive double loops, max-pool ties, gradients
// through the ops, and argument errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/kernels.h"
#include "tests/harness.h"

using namespace ember;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// Even sizes for pooling (the upsampling tests use them as the small side too).
const Shape kShapes[] = {Shape{2, 3, 4, 6}, Shape{1, 1, 2, 2}, Shape{3, 5, 6, 2}, Shape{1, 7, 8, 10}};

// NCHW index.
int64_t idx(const Shape& s, int64_t n, int64_t c, int64_t h, int64_t w) {
  return ((n * s[1] + c) * s[2] + h) * s[3] + w;
}

Shape half(const Shape& s) { return Shape{s[0], s[1], s[2] / 2, s[3] / 2}; }
Shape twice(const Shape& s) { return Shape{s[0], s[1], s[2] * 2, s[3] * 2}; }

// Applies f(large index, small index, tap) over every 2x2 window of a large tensor of shape s.
template <class F>
void each_window(const Shape& s, F f) {
  const Shape h = half(s);
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t c = 0; c < s[1]; ++c)
      for (int64_t i = 0; i < h[2]; ++i)
        for (int64_t j = 0; j < h[3]; ++j)
          for (int t = 0; t < 4; ++t) f(idx(s, n, c, 2 * i + t / 2, 2 * j + t % 2), idx(h, n, c, i, j), t);
}

}  // namespace

TEST_CASE("pool: avg and max pooling kernels match naive loops, forward and backward", "[pool]") {
  uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    INFO("input " << s);
    Tensor x = test::random_tensor(s, seed++), dy = test::random_tensor(half(s), seed++);
    const std::vector<float> xv = x.to_vector(), dyv = dy.to_vector();
    const int64_t ns = half(s).numel();
    std::vector<double> avg(ns, 0.0), mx(ns, -1e30), davg(s.numel()), dmax(s.numel(), 0.0);
    std::vector<int64_t> arg(ns, -1);
    each_window(s, [&](int64_t L, int64_t S, int t) {
      avg[S] += 0.25 * xv[L];
      if (t == 0 || xv[L] > mx[S]) {
        mx[S] = xv[L];
        arg[S] = L;
      }
      davg[L] = 0.25 * dyv[S];
    });
    for (int64_t S = 0; S < ns; ++S) dmax[arg[S]] = dyv[S];

    Tensor ya = Tensor::full(half(s), kNaN), ym = Tensor::full(half(s), kNaN);
    Tensor dxa = Tensor::full(s, kNaN), dxm = Tensor::full(s, kNaN);
    cpu::avgpool2x2_forward(x, ya);
    cpu::maxpool2x2_forward(x, ym);
    cpu::avgpool2x2_backward(dy, dxa);
    cpu::maxpool2x2_backward(x, dy, dxm);
    CHECK(test::rel_err(ya, avg) < 1e-6);
    CHECK(test::rel_err(ym, mx) == 0.0);
    CHECK(test::rel_err(dxa, davg) < 1e-6);
    CHECK(test::rel_err(dxm, dmax) == 0.0);
  }
}

TEST_CASE("pool: upsample2x kernels match naive loops, forward and backward", "[pool]") {
  uint64_t seed = 20;
  for (const Shape& s : kShapes) {
    const Shape big = twice(s);
    INFO("input " << s);
    Tensor x = test::random_tensor(s, seed++), dy = test::random_tensor(big, seed++);
    const std::vector<float> xv = x.to_vector(), dyv = dy.to_vector();
    std::vector<double> y(big.numel()), dx(s.numel(), 0.0);
    for (int64_t n = 0; n < big[0]; ++n)
      for (int64_t c = 0; c < big[1]; ++c)
        for (int64_t h = 0; h < big[2]; ++h)
          for (int64_t w = 0; w < big[3]; ++w) {
            y[idx(big, n, c, h, w)] = xv[idx(s, n, c, h / 2, w / 2)];
            dx[idx(s, n, c, h / 2, w / 2)] += dyv[idx(big, n, c, h, w)];
          }
    Tensor yk = Tensor::full(big, kNaN), dxk = Tensor::full(s, kNaN);
    cpu::upsample2x_forward(x, yk);
    cpu::upsample2x_backward(dy, dxk);
    CHECK(test::rel_err(yk, y) == 0.0);
    CHECK(test::rel_err(dxk, dx) < 1e-6);
  }
  // Odd sizes are fine for upsampling.
  Tensor odd = test::random_param(Shape{1, 2, 3, 1}, 30);
  CHECK(ops::upsample2x(odd).shape() == Shape{1, 2, 6, 2});
}

TEST_CASE("pool: max pooling sends the gradient to the first maximum of a window", "[pool]") {
  // Windows: all equal; tie between taps 1 and 2; tie between taps 2 and 3; a single maximum at 3.
  Tensor x = Tensor::from_vector({5, 5, 1, 3, 0, -1, 7, 7,  //
                                  5, 5, 3, 0, 4, 4, -2, 9},
                                 Shape{1, 1, 2, 8});
  x.requires_grad_();
  Tensor y = ops::max_pool2x2(x);
  CHECK(y.to_vector() == std::vector<float>{5, 3, 4, 9});
  y.backward(Tensor::from_vector({1, 2, 3, 4}, Shape{1, 1, 1, 4}));
  CHECK(x.grad().to_vector() == std::vector<float>{1, 0, 0, 2, 0, 0, 0, 0,  //
                                                   0, 0, 0, 0, 3, 0, 0, 4});
}

TEST_CASE("pool: gradients through avg_pool2x2, max_pool2x2 and upsample2x", "[pool][autograd]") {
  const Shape s{2, 3, 4, 6};
  CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return ops::avg_pool2x2(in[0]); },
                        {test::random_param(s, 40)}) < 1e-2);
  CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return ops::upsample2x(in[0]); },
                        {test::random_param(Shape{1, 3, 3, 5}, 41)}) < 1e-2);
  // Max pooling: distinct values 0.01 apart, so a finite-difference step never changes a window's winner.
  std::vector<float> v(s.numel());
  std::iota(v.begin(), v.end(), 0.0f);
  Generator gen(42);
  for (size_t i = v.size() - 1; i > 0; --i) std::swap(v[i], v[gen.next_u64() % (i + 1)]);
  for (float& e : v) e *= 0.01f;
  Tensor x = Tensor::from_vector(v, s);
  x.requires_grad_();
  CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return ops::max_pool2x2(in[0]); }, {x}) < 1e-2);
}

TEST_CASE("pool: argument errors name the op, the shape and what was expected", "[pool][errors]") {
  REQUIRE_THROWS_WITH(
      ops::avg_pool2x2(test::random_tensor(Shape{2, 3, 5, 4}, 1)),
      Catch::Contains("avg_pool2x2") && Catch::Contains("even H and W") && Catch::Contains("[2, 3, 5, 4]"));
  REQUIRE_THROWS_WITH(ops::max_pool2x2(test::random_tensor(Shape{2, 3, 4, 7}, 1)),
                      Catch::Contains("max_pool2x2") && Catch::Contains("[2, 3, 4, 7]"));
  REQUIRE_THROWS_WITH(ops::max_pool2x2(test::random_tensor(Shape{3, 4, 4}, 1)),
                      Catch::Contains("max_pool2x2") && Catch::Contains("rank 4") && Catch::Contains("[3, 4, 4]"));
  REQUIRE_THROWS_WITH(ops::upsample2x(test::random_tensor(Shape{4, 4}, 1)),
                      Catch::Contains("upsample2x") && Catch::Contains("[4, 4]"));
}

TEST_CASE("pool: a NaN in a window is its maximum, as in PyTorch, and Inf passes", "[pool][nonfinite]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // Windows: NaN at tap 1 (not the first), NaN at taps 0 and 3 (the last NaN takes the gradient),
  // +Inf, -Inf everywhere.
  Tensor x = Tensor::from_vector({1, nan, nan, 2, 3, inf, -inf, -inf,  //
                                  5, 0, 4, nan, 0, 1, -inf, -inf},
                                 Shape{1, 1, 2, 8});
  x.requires_grad_();
  Tensor y = ops::max_pool2x2(x);
  CHECK(test::same_values(y, {nan, nan, inf, -inf}));
  y.backward(Tensor::from_vector({1, 2, 3, 4}, Shape{1, 1, 1, 4}));
  CHECK(test::same_values(x.grad(), {0, 1, 0, 0, 0, 3, 4, 0,  //
                                     0, 0, 0, 2, 0, 0, 0, 0}));
  // Averages and upsampling: NaN and Inf spread to what they touch; inf + -inf is NaN.
  Tensor a = Tensor::from_vector({nan, 1, inf, 1, 1, 1, -inf, 1}, Shape{1, 1, 2, 4});
  CHECK(test::same_values(ops::avg_pool2x2(a), {nan, nan}));
  Tensor b = Tensor::from_vector({1, 1, inf, 1, 1, 1, 1, 1}, Shape{1, 1, 2, 4});
  CHECK(test::same_values(ops::avg_pool2x2(b), {1, inf}));
  CHECK(test::same_values(ops::upsample2x(Tensor::from_vector({nan}, Shape{1, 1, 1, 1})), {nan, nan, nan, nan}));
}

TEST_CASE("pool: max pooling over many rows with ties and signed zeros and NaN and Inf follows the window rule", "[pool][nonfinite]") {
  // The kernel works on blocks of window rows (about 1024 windows each) in parallel: shapes with
  // one window per row, odd rows of windows, and more rows than one block, each with values from a
  // small set, so that ties, -0 against +0, several NaN and +-Inf in one window are common.
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const float values[] = {1.0f, -1.0f, 0.0f, -0.0f, 2.0f, nan, inf, -inf};
  const Shape shapes[] = {Shape{1, 1, 2, 2}, Shape{1, 3, 6, 2}, Shape{2, 3, 10, 14}, Shape{3, 5, 28, 28},
                          Shape{1, 2, 4, 4098}, Shape{64, 3, 14, 14}};
  uint64_t seed = 50;
  for (const Shape& s : shapes) {
    INFO("input " << s);
    Generator gen(seed++);
    std::vector<float> xv(s.numel()), dyv(half(s).numel());
    for (float& e : xv) e = values[gen.next_u64() % 8];
    for (size_t i = 0; i < dyv.size(); ++i) dyv[i] = static_cast<float>(i % 13) + 1.0f;
    // The rule, one tap at a time in window order.
    std::vector<float> want_y(dyv.size()), want_dx(xv.size(), 0.0f);
    std::vector<int64_t> best(dyv.size(), -1);
    each_window(s, [&](int64_t L, int64_t S, int t) {
      if (t == 0 || xv[L] > xv[best[S]] || std::isnan(xv[L])) best[S] = L;
    });
    for (size_t S = 0; S < best.size(); ++S) {
      want_y[S] = xv[best[S]];
      want_dx[best[S]] = dyv[S];
    }
    Tensor x = Tensor::from_vector(xv, s), dy = Tensor::from_vector(dyv, half(s));
    Tensor y = Tensor::full(half(s), -7.0f), dx = Tensor::full(s, kNaN);
    cpu::maxpool2x2_forward(x, y);
    cpu::maxpool2x2_backward(x, dy, dx);
    CHECK(test::same_values(y, want_y));
    CHECK(test::same_values(dx, want_dx));
    // Signed zeros: the first of equal maxima, so the sign of the first zero of an all-zero window.
    const std::vector<float> yv = y.to_vector();
    bool signs_match = true;
    for (size_t S = 0; S < yv.size(); ++S)
      if (want_y[S] == 0.0f) signs_match = signs_match && std::signbit(yv[S]) == std::signbit(want_y[S]);
    CHECK(signs_match);
  }
}
