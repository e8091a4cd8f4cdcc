// Losses: hinge (both signs), binary cross-entropy with logits (incl. extreme logits) and
// cross-entropy over classes, against naive double formulas; gradients by finite differences;
// the argument and label errors.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "tests/harness.h"

using namespace ember;

namespace {

// Values within `margin` of a kink move to the kink +- margin, so central differences with a
// step far below the margin never straddle it.
Tensor away_from_kink(const Tensor& t, float kink, float margin) {
  std::vector<float> v = t.to_vector();
  for (float& x : v)
    if (std::abs(x - kink) < margin) x = x < kink ? kink - margin : kink + margin;
  return Tensor::from_vector(v, t.shape());
}

double naive_hinge(const std::vector<double>& x, double sign) {
  double s = 0;
  for (double v : x) s += v * sign < 1 ? 1 - sign * v : 0.0;
  return s / x.size();
}

// The textbook form -[t log s + (1-t) log(1-s)], fine in double for moderate logits.
double naive_bce(const std::vector<double>& x, const std::vector<double>& t) {
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double p = 1.0 / (1.0 + std::exp(-x[i]));
    s -= t[i] * std::log(p) + (1 - t[i]) * std::log(1 - p);
  }
  return s / x.size();
}

// Direct log(sum exp) without the max shift: fine in double for |logits| <= a few.
double naive_cross_entropy(const std::vector<double>& z, const std::vector<double>& y, int64_t N, int64_t K) {
  double s = 0;
  for (int64_t n = 0; n < N; ++n) {
    double e = 0;
    for (int64_t k = 0; k < K; ++k) e += std::exp(z[n * K + k]);
    s += std::log(e) - z[n * K + static_cast<int64_t>(y[n])];
  }
  return s / N;
}

Tensor labels_for(int64_t N, int64_t K, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> v;
  for (int64_t n = 0; n < N; ++n) v.push_back(static_cast<float>(gen.next_u64() % K));
  return Tensor::from_vector(v, Shape{N});
}

}  // namespace

TEST_CASE("loss: hinge values and gradients for both signs", "[loss]") {
  const std::vector<Shape> shapes{Shape{1}, Shape{7}, Shape{13, 5}, Shape{3, 1, 5, 5}};
  for (float sign : {1.f, -1.f}) {
    for (size_t s = 0; s < shapes.size(); ++s) {
      CAPTURE(sign, shapes[s]);
      // [-3, 3]: both the active and the clipped side of the hinge appear.
      Tensor x = away_from_kink(test::random_tensor(shapes[s], 10 + s, -3.f, 3.f), sign, 0.01f);
      Tensor loss = ops::hinge_loss(x, sign);
      CHECK(loss.dim() == 0);
      CHECK(test::rel_err(loss, {naive_hinge(test::to_double(x), sign)}) < 1e-6);
      x.requires_grad_();
      auto f = [sign](const std::vector<Tensor>& in) { return ops::hinge_loss(in[0], sign); };
      CHECK(test::gradcheck(f, {x}) < 1e-2);
    }
  }
}

TEST_CASE("loss: hinge gradient is -sign/n on the active side and 0 beyond the margin", "[loss]") {
  Tensor x = Tensor::from_vector({-2.f, 0.5f, 2.f}, Shape{3});
  x.requires_grad_();
  ops::hinge_loss(x, 1.f).backward();  // active where x < 1
  std::vector<float> g = x.grad().to_vector();
  CHECK(g[0] == Approx(-1.0 / 3));
  CHECK(g[1] == Approx(-1.0 / 3));
  CHECK(g[2] == 0.f);
  x.zero_grad();
  ops::hinge_loss(x, -1.f).backward();  // active where x > -1
  g = x.grad().to_vector();
  CHECK(g[0] == 0.f);
  CHECK(g[1] == Approx(1.0 / 3));
  CHECK(g[2] == Approx(1.0 / 3));
}

TEST_CASE("loss: bce_with_logits values and gradients, hard and soft targets", "[loss]") {
  const std::vector<Shape> shapes{Shape{1}, Shape{5}, Shape{11, 3}, Shape{2, 3, 7}};
  for (size_t s = 0; s < shapes.size(); ++s) {
    for (bool hard : {true, false}) {
      CAPTURE(shapes[s], hard);
      Tensor x = test::random_param(shapes[s], 20 + s, -4.f, 4.f);
      std::vector<float> tv = test::random_tensor(shapes[s], 30 + s, 0.f, 1.f).to_vector();
      if (hard)
        for (float& t : tv) t = t < 0.5f ? 0.f : 1.f;
      Tensor t = Tensor::from_vector(tv, shapes[s]);
      Tensor loss = ops::bce_with_logits(x, t);
      CHECK(test::rel_err(loss, {naive_bce(test::to_double(x), test::to_double(t))}) < 1e-6);
      auto f = [t](const std::vector<Tensor>& in) { return ops::bce_with_logits(in[0], t); };
      CHECK(test::gradcheck(f, {x}) < 1e-2);
    }
  }
}

TEST_CASE("loss: bce_with_logits stays finite and exact at logits of +-50", "[loss]") {
  Tensor x = Tensor::from_vector({50.f, -50.f, 50.f, -50.f}, Shape{4});
  Tensor t = Tensor::from_vector({0.f, 1.f, 1.f, 0.f}, Shape{4});
  x.requires_grad_();
  Tensor loss = ops::bce_with_logits(x, t);
  // Two confidently wrong terms cost 50 each (plus log1p(e^-50) ~ 2e-22), two right ones ~0.
  REQUIRE(test::all_finite(loss));
  CHECK(loss.item() == Approx(25.0));
  loss.backward();
  REQUIRE(test::all_finite(x.grad()));
  // d/dx = (sigmoid(x) - t) / 4
  CHECK(test::rel_err(x.grad(), {0.25, -0.25, 0.0, 0.0}) < 1e-6);
}

TEST_CASE("loss: cross_entropy values and gradients", "[loss]") {
  const std::vector<std::pair<int64_t, int64_t>> sizes{{1, 1}, {1, 3}, {7, 2}, {5, 11}, {13, 7}};
  for (size_t s = 0; s < sizes.size(); ++s) {
    const auto [N, K] = sizes[s];
    CAPTURE(N, K);
    Tensor z = test::random_param(Shape{N, K}, 40 + s, -3.f, 3.f);
    Tensor y = labels_for(N, K, 50 + s);
    std::vector<double> zd = test::to_double(z), yd = test::to_double(y);
    Tensor loss = ops::cross_entropy(z, y);
    CHECK(loss.dim() == 0);
    CHECK(test::rel_err(loss, {naive_cross_entropy(zd, yd, N, K)}) < 1e-6);

    // Analytic gradient (softmax - onehot) / N, in double, scaled by an incoming gradient of 3.
    ops::scale(loss, 3.f).backward();
    std::vector<double> ref(N * K);
    for (int64_t n = 0; n < N; ++n) {
      double e = 0;
      for (int64_t k = 0; k < K; ++k) e += std::exp(zd[n * K + k]);
      for (int64_t k = 0; k < K; ++k)
        ref[n * K + k] = 3.0 * (std::exp(zd[n * K + k]) / e - (k == yd[n] ? 1 : 0)) / N;
    }
    CHECK(test::rel_err(z.grad(), ref) < 1e-5);

    auto f = [y](const std::vector<Tensor>& in) { return ops::cross_entropy(in[0], y); };
    CHECK(test::gradcheck(f, {z}) < 1e-2);
  }
}

TEST_CASE("loss: cross_entropy is stable for logits of +-1000", "[loss]") {
  Tensor z = Tensor::from_vector({1000.f, 0.f, -1000.f, 1000.f, 0.f, -1000.f}, Shape{2, 3});
  Tensor y = Tensor::from_vector({0.f, 1.f}, Shape{2});
  z.requires_grad_();
  Tensor loss = ops::cross_entropy(z, y);
  CHECK(loss.item() == Approx(500.0));  // row 0 costs ~0, row 1 costs 1000
  loss.backward();
  REQUIRE(test::all_finite(z.grad()));
  CHECK(test::rel_err(z.grad(), {0, 0, 0, 0.5, -0.5, 0}) < 1e-6);
}

TEST_CASE("loss: label errors name the index and the value", "[loss][errors]") {
  Tensor z = test::random_tensor(Shape{4, 5}, 60);
  auto bad = [&](std::vector<float> labels) { return ops::cross_entropy(z, Tensor::from_vector(labels, Shape{4})); };
  REQUIRE_THROWS_WITH(bad({0, 1, 5, 2}), Catch::Contains("labels[2] = 5") && Catch::Contains("0..4"));
  REQUIRE_THROWS_WITH(bad({0, -1, 3, 2}), Catch::Contains("labels[1] = -1"));
  REQUIRE_THROWS_WITH(bad({0, 1, 3, 2.5f}), Catch::Contains("labels[3] = 2.5"));
  REQUIRE_THROWS_WITH(bad({NAN, 1, 3, 2}), Catch::Contains("labels[0]"));
  REQUIRE_NOTHROW(bad({0, 4, 3, 2}));
}

TEST_CASE("loss: shape and argument errors", "[loss][errors]") {
  Tensor z = test::random_tensor(Shape{4, 5}, 61);
  REQUIRE_THROWS_WITH(ops::cross_entropy(z, Tensor::zeros(Shape{3})),
                      Catch::Contains("cross_entropy") && Catch::Contains("[4, 5]") && Catch::Contains("[3]"));
  REQUIRE_THROWS_WITH(ops::cross_entropy(z.reshape({20}), Tensor::zeros(Shape{20})), Catch::Contains("logits [N, K]"));
  REQUIRE_THROWS_WITH(ops::cross_entropy(z, Tensor::zeros(Shape{4, 1})), Catch::Contains("labels [N]"));
  REQUIRE_THROWS_WITH(ops::bce_with_logits(z, Tensor::zeros(Shape{5, 4})), Catch::Contains("shapes differ"));
  REQUIRE_THROWS_WITH(ops::hinge_loss(Tensor::zeros(Shape{0}), 1.f), Catch::Contains("no elements"));
  REQUIRE_THROWS_WITH(ops::hinge_loss(z, 0.5f), Catch::Contains("sign"));
  Tensor t = test::random_param(Shape{4, 5}, 62, 0.f, 1.f);
  REQUIRE_THROWS_WITH(ops::bce_with_logits(z, t), Catch::Contains("target requires grad"));
}

TEST_CASE("loss: NaN and +-Inf propagate as in PyTorch (hinge, BCE, cross-entropy)", "[loss][nonfinite]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // hinge = mean(relu(1 - sign*x)): a NaN logit makes the loss NaN, and its gradient passes
  // (relu's backward at a NaN), -sign/n like an active element's.
  for (float sign : {1.f, -1.f}) {
    CAPTURE(sign);
    Tensor x = Tensor::from_vector({nan, 0.f, 5.f * sign}, Shape{3});
    x.requires_grad_();
    Tensor loss = ops::hinge_loss(x, sign);
    CHECK(std::isnan(loss.item()));
    loss.backward();
    CHECK(test::same_values(x.grad(), {-sign / 3, -sign / 3, 0.f}));
    // An infinite logit on the far side of the margin gives 0, on the near side +Inf.
    CHECK(ops::hinge_loss(Tensor::from_vector({inf * sign, 0.f}, Shape{2}), sign).item() == 0.5f);
    CHECK(ops::hinge_loss(Tensor::from_vector({-inf * sign, 0.f}, Shape{2}), sign).item() == inf);
  }
  // BCE with logits: NaN logit or NaN target -> NaN loss.
  Tensor t = Tensor::from_vector({1.f, 0.f}, Shape{2});
  CHECK(std::isnan(ops::bce_with_logits(Tensor::from_vector({nan, 1.f}, Shape{2}), t).item()));
  CHECK(std::isnan(ops::bce_with_logits(Tensor::from_vector({1.f, 1.f}, Shape{2}), Tensor::from_vector({nan, 0.f}, Shape{2})).item()));
  // Cross-entropy: a NaN logit anywhere in a row (not only the largest or the label's) -> NaN;
  // +Inf -> NaN (inf - inf in logsumexp), as torch.nn.functional.cross_entropy.
  Tensor labels = Tensor::from_vector({0.f, 1.f}, Shape{2});
  CHECK(std::isnan(ops::cross_entropy(Tensor::from_vector({3.f, 1.f, 2.f, nan}, Shape{2, 2}), labels).item()));
  CHECK(std::isnan(ops::cross_entropy(Tensor::from_vector({nan, 1.f, 2.f, 0.f}, Shape{2, 2}), labels).item()));
  CHECK(std::isnan(ops::cross_entropy(Tensor::from_vector({inf, 1.f, 2.f, 0.f}, Shape{2, 2}), labels).item()));
}
