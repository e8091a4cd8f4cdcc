// Reductions: sum and mean over all elements and over given dimensions (adjacent or not,
// negative, keepdim), against a naive double loop over multi-indices; gradients and errors.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <set>

#include "tests/harness.h"

using namespace ember;

namespace {

constexpr double kValTol = 1e-6;
constexpr double kGradTol = 1e-2;  // float finite differences (see test_elementwise.cpp)

// Sums (or averages) x over `dims` (normalised, non-negative) by walking every multi-index;
// returns the values in row-major order of the kept dimensions (same order with or without keepdim).
std::vector<double> naive_reduce(const Tensor& x, const std::set<int>& dims, bool mean) {
  const Shape& s = x.shape();
  std::vector<double> v = test::to_double(x);
  int64_t out_n = 1, count = 1;
  for (int d = 0; d < s.rank(); ++d) (dims.count(d) ? count : out_n) *= s[d];
  std::vector<double> out(out_n, 0.0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    // Peel the multi-index off i from the last dimension; rebuild the output index from kept dims.
    int64_t rest = i, o = 0, stride = 1;
    for (int d = s.rank() - 1; d >= 0; --d) {
      int64_t idx = rest % s[d];
      rest /= s[d];
      if (!dims.count(d)) {
        o += idx * stride;
        stride *= s[d];
      }
    }
    out[o] += v[i];
  }
  if (mean)
    for (double& r : out) r /= count;
  return out;
}

struct Case {
  Shape shape;
  std::vector<int> dims;  // as passed to the op (may be negative)
  std::set<int> norm;     // the same, normalised
  std::vector<int64_t> out, out_keep;
};

}  // namespace

TEST_CASE("reduce: sum and mean of all elements", "[reduce]") {
  for (const Shape& shape : {Shape{1}, Shape{7}, Shape{13, 1}, Shape{3, 5, 7}, Shape{2, 3, 1, 5, 11}}) {
    CAPTURE(shape);
    Tensor x = test::random_param(shape, shape.numel());
    std::set<int> all;
    for (int d = 0; d < shape.rank(); ++d) all.insert(d);
    Tensor s = ops::sum(x), m = ops::mean(x);
    CHECK(s.dim() == 0);
    CHECK(m.dim() == 0);
    CHECK(test::rel_err(s, naive_reduce(x, all, false)) < kValTol);
    CHECK(test::rel_err(m, naive_reduce(x, all, true)) < kValTol);
    CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return ops::sum(in[0]); }, {x}) < kGradTol);
    CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return ops::mean(in[0]); }, {x}) < kGradTol);
  }
}

TEST_CASE("reduce: a mean over many elements keeps float accuracy", "[reduce]") {
  // A running float sum of 1e6 copies of 1.1 loses ~1e-2 relative (ulp 0.06 at 1e6 per add);
  // the double accumulator is exact here.
  Tensor x = Tensor::full(Shape{1000, 1000}, 1.1f);
  CHECK(ops::mean(x).item() == Approx(1.1).epsilon(1e-6));
  CHECK(ops::mean(x, {0, 1}).item() == Approx(1.1).epsilon(1e-6));
}

TEST_CASE("reduce: sum and mean over given dimensions", "[reduce]") {
  const std::vector<Case> cases{
      {Shape{3, 5}, {0}, {0}, {5}, {1, 5}},
      {Shape{3, 5}, {-1}, {1}, {3}, {3, 1}},
      {Shape{1, 7}, {0, 1}, {0, 1}, {}, {1, 1}},
      {Shape{3, 5, 7}, {1}, {1}, {3, 7}, {3, 1, 7}},
      {Shape{3, 5, 7}, {0, 2}, {0, 2}, {5}, {1, 5, 1}},   // non-adjacent
      {Shape{3, 5, 7}, {-1, -3}, {0, 2}, {5}, {1, 5, 1}},  // the same, negative and unordered
      {Shape{2, 3, 5, 7}, {0, 2, 3}, {0, 2, 3}, {3}, {1, 3, 1, 1}},
      {Shape{2, 3, 5, 7}, {1, 3}, {1, 3}, {2, 5}, {2, 1, 5, 1}},
      {Shape{2, 1, 3, 1, 5}, {1, -2}, {1, 3}, {2, 3, 5}, {2, 1, 3, 1, 5}},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    const Case& k = cases[c];
    CAPTURE(k.shape, k.dims);
    Tensor x = test::random_param(k.shape, 900 + c);
    for (bool mean : {false, true}) {
      for (bool keep : {false, true}) {
        CAPTURE(mean, keep);
        Tensor y = mean ? ops::mean(x, k.dims, keep) : ops::sum(x, k.dims, keep);
        CHECK(y.shape() == Shape(keep ? k.out_keep : k.out));
        CHECK(test::rel_err(y, naive_reduce(x, k.norm, mean)) < kValTol);
        std::vector<int> dims = k.dims;
        auto f = [dims, mean, keep](const std::vector<Tensor>& in) {
          return mean ? ops::mean(in[0], dims, keep) : ops::sum(in[0], dims, keep);
        };
        CHECK(test::gradcheck(f, {x}) < kGradTol);
      }
    }
  }
}

TEST_CASE("reduce: gradient of a mean is 1/count broadcast back", "[reduce]") {
  Tensor x = test::random_param(Shape{3, 5, 7}, 77);
  ops::sum(ops::mean(x, {0, 2})).backward();
  for (float g : x.grad().to_vector()) CHECK(g == Approx(1.0 / 21));
}

TEST_CASE("reduce: errors", "[reduce][errors]") {
  Tensor x = test::random_tensor(Shape{2, 3, 4}, 5);
  REQUIRE_THROWS_WITH(ops::sum(x, {3}), Catch::Contains("sum") && Catch::Contains("dimension 3") &&
                                             Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(ops::mean(x, {0, -4}), Catch::Contains("mean") && Catch::Contains("dimension -4"));
  REQUIRE_THROWS_WITH(ops::mean(Tensor::zeros(Shape{0, 3})), Catch::Contains("no elements"));
  REQUIRE_THROWS_WITH(ops::sum(Tensor()), Catch::Contains("undefined"));
}

TEST_CASE("reduce: NaN and +-Inf propagate through sums and means, as in PyTorch", "[reduce][nonfinite]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  CHECK(std::isnan(ops::sum(Tensor::from_vector({1.f, nan, 2.f}, Shape{3})).item()));
  CHECK(std::isnan(ops::mean(Tensor::from_vector({inf, -inf}, Shape{2})).item()));
  CHECK(ops::mean(Tensor::from_vector({inf, 1.f}, Shape{2})).item() == inf);
  // Over a dimension: only the slices that hold the NaN / Inf are hit.
  Tensor x = Tensor::from_vector({1.f, nan, 2.f, 3.f, -inf, 4.f}, Shape{3, 2});
  CHECK(test::same_values(ops::sum(x, {1}), {nan, 5.f, -inf}));
  CHECK(test::same_values(ops::sum(x, {0}), {-inf, nan}));
}
