// Autograd engine: accumulation rules, shared subgraphs, no-grad, and the error cases.
#include <catch2/catch.hpp>
#include <cmath>

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

TEST_CASE("autograd: a shared subgraph (diamond) is backpropagated once with both paths summed", "[autograd]") {
  // a = tanh(x) feeds three uses; y = sum(a*a + 3a): dy/dx = (2a + 3) * (1 - a^2). Dropping a
  // path, or walking a's node before all its gradients arrived, changes the result.
  Tensor x = test::random_param(Shape{2, 5}, 21);
  Tensor a = ops::tanh(x);
  Tensor y = ops::sum(ops::add(ops::mul(a, a), ops::scale(a, 3.f)));
  y.backward();
  std::vector<double> ref;
  for (double v : test::to_double(x)) {
    double t = std::tanh(v);
    ref.push_back((2 * t + 3) * (1 - t * t));
  }
  CHECK(test::rel_err(x.grad(), ref) < 1e-6);
  auto f = [](const std::vector<Tensor>& in) {
    Tensor t = ops::tanh(in[0]);
    return ops::add(ops::mul(t, t), ops::scale(t, 3.f));
  };
  CHECK(test::gradcheck(f, {x}) < 1e-2);
}

TEST_CASE("autograd: a deep chain of 200 ops", "[autograd]") {
  // y = 1.01^100 * x + 100 * c after 100 (scale, add_scalar) pairs; dy/dx = 1.01^100.
  Tensor x = test::random_param(Shape{3}, 22);
  Tensor y = x;
  for (int i = 0; i < 100; ++i) y = ops::add_scalar(ops::scale(y, 1.01f), 0.001f);
  ops::sum(y).backward();
  const double expect = std::pow(1.01, 100);
  for (float g : x.grad().to_vector()) CHECK(g == Approx(expect).epsilon(1e-5));  // 200 float roundings
}

TEST_CASE("autograd: gradient through reshape", "[autograd]") {
  Tensor x = test::random_param(Shape{2, 3, 5}, 23);
  Tensor w = test::random_tensor(Shape{6, 5}, 24);
  ops::sum(ops::mul(x.reshape({6, -1}), w)).backward();
  CHECK(x.grad().shape() == x.shape());
  CHECK(test::rel_err(x.grad(), w) == 0.0);  // the same values in the same order
  auto f = [](const std::vector<Tensor>& in) { return ops::sigmoid(in[0].reshape({-1, 2, 3})).flatten(0); };
  CHECK(test::gradcheck(f, {x}) < 1e-2);
}

TEST_CASE("autograd: requires_grad_ on a non-leaf is an error", "[autograd][errors]") {
  Tensor x = test::random_param(Shape{3}, 25);
  Tensor y = ops::relu(x);
  REQUIRE_THROWS_WITH(y.requires_grad_(), Catch::Contains("only leaf tensors"));
  REQUIRE_THROWS_WITH(x.reshape({3, 1}).requires_grad_(false), Catch::Contains("only leaf tensors"));
  Tensor d = y.detach();
  REQUIRE_NOTHROW(d.requires_grad_());  // a detached tensor is a leaf
}

TEST_CASE("autograd: an input used by two different ops gets both gradients", "[autograd]") {
  // z = sum(x * w + sigmoid(x)): dz/dx = w + s(1 - s), dz/dw = x.
  Tensor x = test::random_param(Shape{7}, 26), w = test::random_param(Shape{7}, 27);
  ops::sum(ops::add(ops::mul(x, w), ops::sigmoid(x))).backward();
  std::vector<double> xd = test::to_double(x), wd = test::to_double(w), ref;
  for (size_t i = 0; i < xd.size(); ++i) {
    double s = 1 / (1 + std::exp(-xd[i]));
    ref.push_back(wd[i] + s * (1 - s));
  }
  CHECK(test::rel_err(x.grad(), ref) < 1e-6);
  CHECK(test::rel_err(w.grad(), xd) == 0.0);
}

// Gradient-ready hooks (autograd.h): what DataParallel overlaps its all-reduce with.
namespace {
// Records, per call, which leaf fired and a copy of its .grad() at that moment.
struct HookLog {
  std::vector<std::pair<std::string, std::vector<float>>> calls;
  GradReadyHookHandle watch(const Tensor& leaf, const std::string& name) {
    return add_grad_ready_hook(leaf, [this, name](const Tensor& t) { calls.emplace_back(name, t.grad().to_vector()); });
  }
  int count(const std::string& name) const {
    int n = 0;
    for (const auto& c : calls) n += c.first == name;
    return n;
  }
};
}  // namespace

TEST_CASE("autograd: a gradient-ready hook fires once per backward with the final gradient", "[autograd]") {
  // x is used three times (x*x and +x): the hook must see 2x + 1 complete, not a partial sum.
  Tensor x = Tensor::from_vector({1.f, -2.f, 3.f}, Shape{3});
  x.requires_grad_();
  Tensor w = Tensor::from_vector({0.5f, 4.f, -1.f}, Shape{3});
  w.requires_grad_();
  HookLog log;
  GradReadyHookHandle hx = log.watch(x, "x"), hw = log.watch(w, "w");
  ops::sum(ops::add(ops::mul(ops::mul(x, x), w), x)).backward();  // d/dx = 2xw + 1, d/dw = x^2
  REQUIRE(log.count("x") == 1);
  REQUIRE(log.count("w") == 1);
  for (const auto& [name, g] : log.calls) {
    const std::vector<float> expect = name == "x" ? std::vector<float>{2.f, -15.f, -5.f} : std::vector<float>{1.f, 4.f, 9.f};
    CHECK(g == expect);
  }
  // A second backward fires again, with .grad() accumulated over both.
  ops::sum(ops::scale(x, 2.f)).backward();
  REQUIRE(log.count("x") == 2);
  CHECK(log.count("w") == 1);  // w is not in that graph
  CHECK(log.calls.back().second == (std::vector<float>{4.f, -13.f, -3.f}));
  // Once the handle is gone the hook is.
  hx.reset();
  ops::sum(x).backward();
  CHECK(log.count("x") == 2);
}

TEST_CASE("autograd: a gradient-ready hook fires before the rest of the graph is walked", "[autograd]") {
  // a is read only by the last op of the forward, so its gradient is complete first: its hook
  // must run before b's (whose gradient needs the whole graph), i.e. during backward.
  Tensor a = test::random_param(Shape{4}, 11), b = test::random_param(Shape{4}, 12);
  HookLog log;
  GradReadyHookHandle ha = log.watch(a, "a"), hb = log.watch(b, "b");
  Tensor h = ops::mul(ops::mul(b, b), b);
  ops::sum(ops::mul(h, a)).backward();
  REQUIRE(log.calls.size() == 2);
  CHECK(log.calls[0].first == "a");
  CHECK(log.calls[1].first == "b");
}

TEST_CASE("autograd: no gradient-ready hook for a leaf that got no gradient", "[autograd]") {
  Tensor x = test::random_param(Shape{3}, 13), unused = test::random_param(Shape{3}, 14);
  Tensor blocked = test::random_param(Shape{3}, 15);
  HookLog log;
  GradReadyHookHandle hx = log.watch(x, "x"), hu = log.watch(unused, "unused"), hb = log.watch(blocked, "blocked");
  // An op whose backward returns no gradient for its second input: `blocked` is in the graph
  // but receives nothing.
  Tensor y = ops::add(x, x);
  record("first_only", y, {x, blocked}, [](const Tensor& g) { return std::vector<Tensor>{g, Tensor()}; });
  ops::sum(y).backward();
  CHECK(log.count("x") == 1);
  CHECK(log.count("unused") == 0);
  CHECK(log.count("blocked") == 0);
  CHECK_FALSE(blocked.grad().defined());
}

TEST_CASE("autograd: a gradient-ready hook on a leaf loss and on bad input", "[autograd]") {
  Tensor x = test::random_param(Shape{1}, 16);
  HookLog log;
  GradReadyHookHandle hx = log.watch(x, "x");
  x.backward();
  CHECK(log.count("x") == 1);
  Tensor plain = Tensor::zeros(Shape{2});
  REQUIRE_THROWS_WITH(add_grad_ready_hook(plain, [](const Tensor&) {}), Catch::Contains("not a leaf that requires"));
  Tensor nonleaf = ops::scale(x, 2.f);
  REQUIRE_THROWS_WITH(add_grad_ready_hook(nonleaf, [](const Tensor&) {}), Catch::Contains("not a leaf"));
}
