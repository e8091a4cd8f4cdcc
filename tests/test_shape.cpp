// Shape ops: reshape (incl. -1) and flatten as views, concat / narrow / split along dim 0 as
// copies; values against plain index arithmetic, gradients by finite differences, the errors.
#include <algorithm>
#include <catch2/catch.hpp>

#include "tests/harness.h"

using namespace ember;

namespace {
constexpr double kGradTol = 1e-2;  // float finite differences (see test_elementwise.cpp)

// Rows [start, start + len) of x's values, x viewed as [rows, row_size].
std::vector<double> row_range(const Tensor& x, int64_t start, int64_t len) {
  std::vector<double> v = test::to_double(x);
  const int64_t row = x.numel() / x.size(0);
  return std::vector<double>(v.begin() + start * row, v.begin() + (start + len) * row);
}
}  // namespace

TEST_CASE("shape: reshape keeps the data and infers -1", "[shape]") {
  Tensor x = test::random_tensor(Shape{2, 3, 5}, 1);
  Tensor a = x.reshape({5, -1});
  CHECK(a.shape() == Shape{5, 6});
  CHECK(a.to_vector() == x.to_vector());
  CHECK(x.reshape({-1}).shape() == Shape{30});
  CHECK(x.reshape({1, -1, 3}).shape() == Shape{1, 10, 3});
  CHECK(x.reshape({30, 1}).shape() == Shape{30, 1});
  // A view: a write through it is seen by the original.
  a.data()[7] = 42.f;
  CHECK(x.to_vector()[7] == 42.f);
}

TEST_CASE("shape: reshape errors", "[shape][errors]") {
  Tensor x = test::random_tensor(Shape{2, 3, 5}, 2);
  REQUIRE_THROWS_WITH(x.reshape({4, 8}), Catch::Contains("[2, 3, 5]") && Catch::Contains("[4, 8]"));
  REQUIRE_THROWS_WITH(x.reshape({-1, -1}), Catch::Contains("more than one -1"));
  REQUIRE_THROWS_WITH(x.reshape({7, -1}), Catch::Contains("cannot infer"));
  REQUIRE_THROWS_WITH(x.reshape({-2, -15}), Catch::Contains("negative dimension"));
  REQUIRE_THROWS_WITH(x.reshape({1, 1, 1, 1, 2, 15}), Catch::Contains("at most 5"));
}

TEST_CASE("shape: flatten", "[shape]") {
  Tensor x = test::random_param(Shape{3, 2, 5, 7}, 3);
  CHECK(x.flatten().shape() == Shape{3, 70});
  CHECK(x.flatten(0).shape() == Shape{210});
  CHECK(x.flatten(2).shape() == Shape{3, 2, 35});
  CHECK(x.flatten().to_vector() == x.to_vector());
  CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return ops::tanh(in[0].flatten()); }, {x}) < kGradTol);
}

TEST_CASE("shape: concat values and gradients", "[shape]") {
  const std::vector<std::vector<int64_t>> row_counts{{1}, {1, 1}, {3, 1, 5}, {2, 0, 7}};
  for (const Shape& tail : {Shape{}, Shape{3}, Shape{2, 5}}) {
    for (size_t c = 0; c < row_counts.size(); ++c) {
      std::vector<Tensor> xs;
      std::vector<double> ref;
      for (size_t i = 0; i < row_counts[c].size(); ++i) {
        std::vector<int64_t> dims{row_counts[c][i]};
        for (int64_t d : tail.vec()) dims.push_back(d);
        xs.push_back(test::random_param(Shape(dims), 10 * c + i));
        for (double v : test::to_double(xs.back())) ref.push_back(v);
      }
      CAPTURE(tail, row_counts[c]);
      Tensor y = ops::concat(xs);
      CHECK(y.size(0) == static_cast<int64_t>(ref.size() / std::max<int64_t>(1, tail.numel())));
      CHECK(test::rel_err(y, ref) == 0.0);
      // Empty inputs receive an (empty) gradient but finite differences have nothing to probe.
      std::vector<Tensor> probed;
      for (const Tensor& x : xs)
        if (x.numel() > 0) probed.push_back(x);
      auto f = [xs](const std::vector<Tensor>&) { return ops::tanh(ops::concat(xs)); };
      CHECK(test::gradcheck(f, probed) < kGradTol);
    }
  }
}

TEST_CASE("shape: narrow values and gradients", "[shape]") {
  Tensor x = test::random_param(Shape{7, 3, 2}, 20);
  for (auto [start, len] : std::vector<std::pair<int64_t, int64_t>>{{0, 7}, {0, 1}, {6, 1}, {2, 3}, {4, 0}}) {
    CAPTURE(start, len);
    Tensor y = ops::narrow(x, start, len);
    CHECK(y.shape() == Shape{len, 3, 2});
    CHECK(test::rel_err(y, row_range(x, start, len)) == 0.0);
    if (len == 0) continue;
    // Gradient: the incoming gradient in rows [start, start+len), zeros elsewhere.
    auto f = [start = start, len = len](const std::vector<Tensor>& in) {
      return ops::tanh(ops::narrow(in[0], start, len));
    };
    CHECK(test::gradcheck(f, {x}, 1e-3, 64) < kGradTol);
  }
  // narrow copies: writing to the result leaves x alone.
  Tensor y = ops::narrow(x, 1, 2);
  float before = x.to_vector()[6];
  y.fill_(-9.f);
  CHECK(x.to_vector()[6] == before);
}

TEST_CASE("shape: split values and gradients", "[shape]") {
  Tensor x = test::random_param(Shape{11, 3}, 30);
  const std::vector<int64_t> sizes{2, 0, 1, 5, 3};
  std::vector<Tensor> parts = ops::split(x, sizes);
  REQUIRE(parts.size() == sizes.size());
  int64_t at = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    CHECK(parts[i].shape() == Shape{sizes[i], 3});
    CHECK(test::rel_err(parts[i], row_range(x, at, sizes[i])) == 0.0);
    at += sizes[i];
  }
  // Pieces used in different ways: each scatters its gradient into its own rows.
  auto f = [sizes](const std::vector<Tensor>& in) {
    std::vector<Tensor> p = ops::split(in[0], sizes);
    return ops::concat({ops::tanh(p[3]), ops::scale(p[0], 2.f), ops::mul(p[4], p[4])});
  };
  CHECK(test::gradcheck(f, {x}, 1e-3, 64) < kGradTol);
  // Row 2 (piece 2) is unused: its gradient is exactly zero.
  ops::sum(f({x})).backward();
  std::vector<float> g = x.grad().to_vector();
  for (int k = 0; k < 3; ++k) CHECK(g[2 * 3 + k] == 0.f);
}

TEST_CASE("shape: concat, narrow and split errors", "[shape][errors]") {
  Tensor a = Tensor::zeros(Shape{2, 3}), b = Tensor::zeros(Shape{4, 3});
  REQUIRE_THROWS_WITH(ops::concat({a, b, Tensor::zeros(Shape{1, 4})}),
                      Catch::Contains("input 2") && Catch::Contains("[1, 4]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(ops::concat({a, Tensor::zeros(Shape{2, 3, 1})}), Catch::Contains("input 1"));
  REQUIRE_THROWS_WITH(ops::concat({a, Tensor()}), Catch::Contains("input 1 is undefined"));
  REQUIRE_THROWS_WITH(ops::concat({}), Catch::Contains("no inputs"));
  REQUIRE_THROWS_WITH(ops::concat({Tensor::scalar(1.f)}), Catch::Contains("at least one dimension"));
  REQUIRE_THROWS_WITH(ops::narrow(b, 3, 2), Catch::Contains("narrow") && Catch::Contains("[3, 5)") &&
                                                Catch::Contains("[4, 3]"));
  REQUIRE_THROWS_WITH(ops::narrow(b, -1, 2), Catch::Contains("narrow"));
  REQUIRE_THROWS_WITH(ops::split(b, {1, 2}), Catch::Contains("{1, 2}") && Catch::Contains("sum to 3") &&
                                                 Catch::Contains("is 4"));
  REQUIRE_THROWS_WITH(ops::split(b, {5, -1}), Catch::Contains("negative size -1"));
}
