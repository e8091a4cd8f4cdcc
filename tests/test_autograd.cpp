// Autograd engine: accumulation rules, shared subgraphs, no-grad, and the error cases.
#include <catch2/catch.hpp>

#include "tests/harness.h"

using namespace ember;

TEST_CASE("autograd: a tensor used twice accumulates both paths", "[autograd]") {
  Tensor x = Tensor::from_vector({1.f, -2.f, 3.f}, Shape{3});
  x.requires_grad_();
  Tensor y = ops::sum(ops::add(ops::mul(x, x), x));  // d/dx = 2x + 1
  y.backward();
  std::vector<float> g = x.grad().to_vector();
  CHECK(g[0] == Approx(3.f));
  CHECK(g[1] == Approx(-3.f));
  CHECK(g[2] == Approx(7.f));
}

TEST_CASE("autograd: leaf gradients accumulate across backward calls until zero_grad", "[autograd]") {
  Tensor x = test::random_param(Shape{4}, 3);
  ops::sum(ops::scale(x, 2.f)).backward();
  ops::sum(ops::scale(x, 3.f)).backward();
  for (float v : x.grad().to_vector()) CHECK(v == Approx(5.f));
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: backward twice through a freed graph is an error", "[autograd]") {
  Tensor x = test::random_param(Shape{2, 3}, 5);
  Tensor y = ops::sum(ops::mul(x, x));
  y.backward();
  REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("already freed"));
}

TEST_CASE("autograd: non-scalar backward needs an explicit gradient", "[autograd]") {
  Tensor x = test::random_param(Shape{2, 3}, 7);
  Tensor y = ops::mul(x, x);
  REQUIRE_THROWS_WITH(y.backward(), Catch::Contains("without a gradient"));
  y.backward(Tensor::full(Shape{2, 3}, 1.f));
  std::vector<float> xv = x.to_vector(), g = x.grad().to_vector();
  for (size_t i = 0; i < xv.size(); ++i) CHECK(g[i] == Approx(2 * xv[i]));
}

TEST_CASE("autograd: no-grad guard records nothing", "[autograd]") {
  Tensor x = test::random_param(Shape{3}, 9);
  Tensor y;
  {
    NoGradGuard ng;
    y = ops::mul(x, x);
  }
  CHECK_FALSE(y.requires_grad());
  CHECK(y.grad_fn() == nullptr);
  REQUIRE_THROWS_WITH(ops::sum(y).backward(), Catch::Contains("does not require grad"));
}

TEST_CASE("autograd: gradcheck of a small expression", "[autograd]") {
  Tensor a = test::random_param(Shape{3, 5}, 11), b = test::random_param(Shape{3, 5}, 12);
  auto f = [](const std::vector<Tensor>& in) {
    return ops::tanh(ops::sub(ops::mul(in[0], in[1]), ops::scale(in[0], 0.5f)));
  };
  CHECK(test::gradcheck(f, {a, b}) < 1e-2);
}
