// Elementwise maps, bias_add, activations and gamma_residual: values against naive double
// formulas over shapes with sizes 1, odd and prime; gradients by central finite differences.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "kernels/kernels.h"
#include "tests/harness.h"

using namespace ember;

namespace {

// Finite differences of a float loss: with the step kEps = 1e-2 the rounding noise of a loss
// summed over ~200 elements (~4e-6 / 2e-2) and the truncation error (eps^2 f''' / 6 ~ 3e-5) stay
// well below 1e-2 of the gradient, while a wrong gradient is off by O(1).
constexpr double kGradTol = 1e-2;
constexpr double kEps = 1e-2;
// Float results against double references: a few ulps.
constexpr double kValTol = 1e-6;

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> s{Shape{1}, Shape{7}, Shape{3, 5}, Shape{1, 13}, Shape{2, 3, 5, 7}};
  return s;
}

std::vector<double> map_ref(const Tensor& x, const std::function<double(double)>& f) {
  std::vector<double> r = test::to_double(x);
  for (double& v : r) v = f(v);
  return r;
}

std::vector<double> zip_ref(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  std::vector<double> ra = test::to_double(a), rb = test::to_double(b);
  for (size_t i = 0; i < ra.size(); ++i) ra[i] = f(ra[i], rb[i]);
  return ra;
}

// Moves values out of (-margin, margin) so finite differences never straddle a kink at 0.
Tensor away_from_zero(const Tensor& t, float margin) {
  std::vector<float> v = t.to_vector();
  for (float& x : v)
    if (std::abs(x) < margin) x = x < 0 ? -margin : margin;
  return Tensor::from_vector(v, t.shape());
}

// Checks a unary op's values against `ref` and its gradient by finite differences on every shape.
void check_unary(const std::function<Tensor(const Tensor&)>& op, const std::function<double(double)>& ref,
                 float lo, float hi, bool has_kink_at_zero = false) {
  for (size_t s = 0; s < shapes().size(); ++s) {
    CAPTURE(shapes()[s]);
    Tensor x = test::random_tensor(shapes()[s], 100 + s, lo, hi);
    if (has_kink_at_zero) x = away_from_zero(x, 2 * kEps);
    CHECK(test::rel_err(op(x), map_ref(x, ref)) < kValTol);
    x.requires_grad_();
    CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return op(in[0]); }, {x}, kEps) < kGradTol);
  }
}

void check_binary(const std::function<Tensor(const Tensor&, const Tensor&)>& op,
                  const std::function<double(double, double)>& ref) {
  for (size_t s = 0; s < shapes().size(); ++s) {
    CAPTURE(shapes()[s]);
    Tensor a = test::random_param(shapes()[s], 200 + s), b = test::random_param(shapes()[s], 300 + s);
    CHECK(test::rel_err(op(a, b), zip_ref(a, b, ref)) < kValTol);
    CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return op(in[0], in[1]); }, {a, b}, kEps) < kGradTol);
  }
}

}  // namespace

TEST_CASE("elementwise: add, sub, mul", "[elementwise]") {
  SECTION("add") { check_binary(ops::add, [](double a, double b) { return a + b; }); }
  SECTION("sub") { check_binary(ops::sub, [](double a, double b) { return a - b; }); }
  SECTION("mul") { check_binary(ops::mul, [](double a, double b) { return a * b; }); }
}

TEST_CASE("elementwise: scale and add_scalar", "[elementwise]") {
  for (float alpha : {-2.5f, 0.f, 3.f}) {
    CAPTURE(alpha);
    check_unary([alpha](const Tensor& x) { return ops::scale(x, alpha); }, [alpha](double v) { return alpha * v; },
                -1.f, 1.f);
  }
  check_unary([](const Tensor& x) { return ops::add_scalar(x, 0.75f); }, [](double v) { return v + 0.75; }, -1.f,
              1.f);
}

TEST_CASE("elementwise: bias_add over N,C and N,C,H,W inputs, incl. H=W=1", "[elementwise]") {
  const std::vector<Shape> xs{Shape{1, 1}, Shape{5, 3}, Shape{2, 7, 3, 5}, Shape{3, 5, 1, 1}, Shape{1, 2, 1, 1}};
  for (size_t s = 0; s < xs.size(); ++s) {
    const Shape& shape = xs[s];
    CAPTURE(shape);
    const int64_t C = shape[1], inner = shape.numel() / (shape[0] * C);
    Tensor x = test::random_param(shape, 400 + s), b = test::random_param(Shape{C}, 500 + s);
    std::vector<double> ref = test::to_double(x), bd = test::to_double(b);
    for (size_t i = 0; i < ref.size(); ++i) ref[i] += bd[(i / inner) % C];
    CHECK(test::rel_err(ops::bias_add(x, b), ref) < kValTol);
    CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return ops::bias_add(in[0], in[1]); }, {x, b}, kEps) <
          kGradTol);
  }
}

TEST_CASE("elementwise: bias_add and same-shape errors", "[elementwise][errors]") {
  Tensor x = test::random_tensor(Shape{2, 3, 4}, 1);
  REQUIRE_THROWS_WITH(ops::bias_add(x, Tensor::zeros(Shape{4})),
                      Catch::Contains("bias_add") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(ops::bias_add(x, Tensor::zeros(Shape{3, 1})), Catch::Contains("bias [C]"));
  REQUIRE_THROWS_WITH(ops::add(x, Tensor::zeros(Shape{2, 4, 3})), Catch::Contains("[2, 3, 4] and [2, 4, 3]"));
  REQUIRE_THROWS_WITH(ops::mul(x, Tensor()), Catch::Contains("undefined"));
}

TEST_CASE("elementwise: relu and leaky_relu", "[elementwise]") {
  check_unary(ops::relu, [](double v) { return v > 0 ? v : 0.0; }, -1.f, 1.f, true);
  for (float slope : {0.1f, 0.2f}) {
    CAPTURE(slope);
    check_unary([slope](const Tensor& x) { return ops::leaky_relu(x, slope); },
                [slope](double v) { return v > 0 ? v : static_cast<double>(slope) * v; }, -1.f, 1.f, true);
  }
}

TEST_CASE("elementwise: tanh and sigmoid", "[elementwise]") {
  check_unary(ops::tanh, [](double v) { return std::tanh(v); }, -3.f, 3.f);
  check_unary(ops::sigmoid, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }, -6.f, 6.f);
}

TEST_CASE("elementwise: tanh and sigmoid saturate cleanly at large |x|", "[elementwise]") {
  Tensor x = Tensor::from_vector({-1e4f, -100.f, -30.f, 30.f, 100.f, 1e4f}, Shape{6});
  x.requires_grad_();
  Tensor s = ops::sigmoid(x);
  REQUIRE(test::all_finite(s));
  std::vector<float> sv = s.to_vector();
  CHECK(sv[0] == 0.f);
  CHECK(sv[1] == Approx(std::exp(-100.0)).margin(1e-45));  // a denormal, not NaN
  CHECK(sv[2] == Approx(1.0 / (1.0 + std::exp(30.0))));
  CHECK(sv[3] == 1.f);
  CHECK(sv[5] == 1.f);
  Tensor t = ops::tanh(x);
  CHECK(test::rel_err(t, {-1, -1, -1, 1, 1, 1}) == 0.0);
  ops::sum(ops::add(s, t)).backward();
  REQUIRE(test::all_finite(x.grad()));
  for (float g : x.grad().to_vector()) CHECK(std::abs(g) < 1e-12f);
}

TEST_CASE("elementwise: gamma_residual", "[elementwise]") {
  for (size_t s = 0; s < shapes().size(); ++s) {
    CAPTURE(shapes()[s]);
    for (const Shape& gshape : {Shape{}, Shape{1}}) {
      Tensor gamma = test::random_param(gshape, 600 + s, -2.f, 2.f);
      Tensor o = test::random_param(shapes()[s], 700 + s), x = test::random_param(shapes()[s], 800 + s);
      const double g = gamma.item();
      std::vector<double> ref = zip_ref(o, x, [g](double a, double b) { return g * a + b; });
      CHECK(test::rel_err(ops::gamma_residual(gamma, o, x), ref) < kValTol);
      auto f = [](const std::vector<Tensor>& in) { return ops::gamma_residual(in[0], in[1], in[2]); };
      CHECK(test::gradcheck(f, {gamma, o, x}, kEps) < kGradTol);
    }
  }
  REQUIRE_THROWS_WITH(ops::gamma_residual(Tensor::zeros(Shape{2}), Tensor::zeros(Shape{3}), Tensor::zeros(Shape{3})),
                      Catch::Contains("one element"));
}

TEST_CASE("elementwise: NaN and +-Inf propagate as in PyTorch, forward and backward", "[elementwise][nonfinite]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<float> in = {nan, inf, -inf, 2.f, -2.f};
  const std::vector<float> dy = {1.f, 2.f, 3.f, 4.f, 5.f};
  // {op, forward, d(sum(op(x) * dy))/dx}; the values torch gives for these inputs.
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> op;
    std::vector<float> y, dx;
  };
  const std::vector<Case> cases = {
      {"relu", ops::relu, {nan, inf, 0.f, 2.f, 0.f}, {1.f, 2.f, 0.f, 4.f, 0.f}},
      {"leaky_relu", [](const Tensor& x) { return ops::leaky_relu(x, 0.5f); }, {nan, inf, -inf, 2.f, -1.f},
       {0.5f, 2.f, 1.5f, 4.f, 2.5f}},
      {"tanh", ops::tanh, {nan, 1.f, -1.f, std::tanh(2.f), std::tanh(-2.f)}, {}},
      {"sigmoid", ops::sigmoid, {nan, 1.f, 0.f, 1.f / (1.f + std::exp(-2.f)), 1.f / (1.f + std::exp(2.f))}, {}},
      {"scale", [](const Tensor& x) { return ops::scale(x, -2.f); }, {nan, -inf, inf, -4.f, 4.f},
       {-2.f, -4.f, -6.f, -8.f, -10.f}},
      {"add_scalar", [](const Tensor& x) { return ops::add_scalar(x, 1.f); }, {nan, inf, -inf, 3.f, -1.f}, dy},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Tensor x = Tensor::from_vector(in, Shape{5});
    x.requires_grad_();
    Tensor y = c.op(x);
    CHECK(test::same_values(y, c.y));
    y.backward(Tensor::from_vector(dy, Shape{5}));
    std::vector<float> g = x.grad().to_vector();
    if (!c.dx.empty()) CHECK(test::same_values(x.grad(), c.dx));
    CHECK(std::isnan(g[0]) == (std::string(c.name) == "tanh" || std::string(c.name) == "sigmoid"));
  }
  // Binary ops: a NaN in either operand, inf - inf and 0 * inf give NaN.
  Tensor a = Tensor::from_vector({nan, 1.f, inf, 0.f}, Shape{4}), b = Tensor::from_vector({1.f, nan, inf, inf}, Shape{4});
  CHECK(test::same_values(ops::add(a, b), {nan, nan, inf, inf}));
  CHECK(test::same_values(ops::sub(a, b), {nan, nan, nan, -inf}));
  CHECK(test::same_values(ops::mul(a, b), {nan, nan, inf, nan}));
}

TEST_CASE("elementwise: relu and bias kernels on large odd sizes (threaded and vectorised paths)", "[elementwise]") {
  // Above the serial limit of vector_loops.h and of odd length, so that threads split the range
  // and every vector loop has a tail; outputs start as NaN so an element left unwritten fails.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<Shape> xs{Shape{3, 7, 61, 67}, Shape{4099, 9}, Shape{1, 1, 40001, 1}, Shape{64, 3, 14, 14}};
  uint64_t seed = 900;
  for (const Shape& s : xs) {
    CAPTURE(s);
    const int64_t C = s[1], inner = s.numel() / (s[0] * C);
    Tensor x = test::random_tensor(s, seed++), dy = test::random_tensor(s, seed++), b = test::random_tensor(Shape{C}, seed++);
    const std::vector<double> xd = test::to_double(x), dyd = test::to_double(dy), bd = test::to_double(b);
    std::vector<double> relu(xd.size()), relu_dx(xd.size()), leaky(xd.size()), leaky_dx(xd.size()), biased(xd.size());
    std::vector<double> db(C, 0.0);
    for (size_t i = 0; i < xd.size(); ++i) {
      relu[i] = xd[i] > 0 ? xd[i] : 0.0;
      relu_dx[i] = xd[i] > 0 ? dyd[i] : 0.0;
      leaky[i] = xd[i] > 0 ? xd[i] : 0.2 * xd[i];
      leaky_dx[i] = xd[i] > 0 ? dyd[i] : 0.2 * dyd[i];
      biased[i] = xd[i] + bd[(i / inner) % C];
      db[(i / inner) % C] += dyd[i];
    }
    Tensor y = Tensor::full(s, nan), dx = Tensor::full(s, nan), dbias = Tensor::full(Shape{C}, nan);
    cpu::relu_forward(x, y);
    CHECK(test::rel_err(y, relu) < kValTol);
    cpu::relu_backward(x, dy, dx);
    CHECK(test::rel_err(dx, relu_dx) < kValTol);
    y.fill_(nan);
    dx.fill_(nan);
    cpu::leaky_relu_forward(x, 0.2f, y);
    CHECK(test::rel_err(y, leaky) < kValTol);
    cpu::leaky_relu_backward(x, 0.2f, dy, dx);
    CHECK(test::rel_err(dx, leaky_dx) < kValTol);
    y.fill_(nan);
    cpu::bias_add(x, b, y);
    CHECK(test::rel_err(y, biased) < kValTol);
    cpu::bias_grad(dy, dbias);
    CHECK(test::rel_err(dbias, db) < kValTol);
  }
}
