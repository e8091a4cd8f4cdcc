// Batch norm: the CPU kernels against double-precision references (batch statistics, running
// statistics with the unbiased variance, an explicit Jacobian for the backward), ops::batch_norm
// in training and eval modes, gradients of x / gamma / beta, and argument errors.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "kernels/kernels.h"
#include "tests/harness.h"

using namespace ember;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const double kEps = 1e-5;

// 4-D images, [N, C] (BatchNorm1d), [N, C, L], one image.
const Shape kShapes[] = {Shape{4, 3, 5, 3}, Shape{7, 3}, Shape{2, 5, 7}, Shape{1, 2, 3, 3}};

int64_t inner_of(const Shape& s) { return s.numel() / (s[0] * s[1]); }

// Element indices of channel c, in order.
std::vector<int64_t> channel_indices(const Shape& s, int64_t c) {
  std::vector<int64_t> idx;
  const int64_t inner = inner_of(s);
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t k = 0; k < inner; ++k) idx.push_back((n * s[1] + c) * inner + k);
  return idx;
}

struct Stats {
  std::vector<double> mean, var;  // var biased
};

Stats batch_stats(const Shape& s, const std::vector<float>& x) {
  Stats st;
  for (int64_t c = 0; c < s[1]; ++c) {
    std::vector<int64_t> idx = channel_indices(s, c);
    double mean = 0, var = 0;
    for (int64_t i : idx) mean += x[i];
    mean /= idx.size();
    for (int64_t i : idx) var += (x[i] - mean) * (x[i] - mean);
    st.mean.push_back(mean);
    st.var.push_back(var / idx.size());
  }
  return st;
}

// gamma * (x - mean) / sqrt(var + eps) + beta per channel.
std::vector<double> normalise(const Shape& s, const std::vector<float>& x, const std::vector<double>& mean,
                              const std::vector<double>& var, const std::vector<float>& gamma,
                              const std::vector<float>& beta) {
  std::vector<double> y(x.size());
  for (int64_t c = 0; c < s[1]; ++c)
    for (int64_t i : channel_indices(s, c)) y[i] = gamma[c] * (x[i] - mean[c]) / std::sqrt(var[c] + kEps) + beta[c];
  return y;
}

std::vector<double> as_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

}  // namespace

TEST_CASE("norm: training forward kernel normalises with batch statistics and updates running ones", "[norm]") {
  uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    INFO("input " << s);
    const int64_t C = s[1];
    const double m = static_cast<double>(s.numel() / C), momentum = 0.25;
    Tensor x = test::random_tensor(s, seed++, -2.f, 3.f);
    Tensor gamma = test::random_tensor(Shape{C}, seed++, 0.5f, 1.5f), beta = test::random_tensor(Shape{C}, seed++);
    Tensor rm = test::random_tensor(Shape{C}, seed++), rv = test::random_tensor(Shape{C}, seed++, 0.5f, 2.f);
    const std::vector<float> rm0 = rm.to_vector(), rv0 = rv.to_vector();
    Tensor y = Tensor::full(s, kNaN), save_mean = Tensor::full(Shape{C}, kNaN),
           save_invstd = Tensor::full(Shape{C}, kNaN);
    cpu::batchnorm_forward_train(x, gamma, beta, static_cast<float>(kEps), static_cast<float>(momentum), rm, rv, y,
                                 save_mean, save_invstd);
    const std::vector<float> xv = x.to_vector();
    const Stats st = batch_stats(s, xv);
    std::vector<double> invstd, rm_ref, rv_ref;
    for (int64_t c = 0; c < C; ++c) {
      invstd.push_back(1.0 / std::sqrt(st.var[c] + kEps));
      rm_ref.push_back((1 - momentum) * rm0[c] + momentum * st.mean[c]);
      rv_ref.push_back((1 - momentum) * rv0[c] + momentum * st.var[c] * m / (m - 1));
    }
    CHECK(test::rel_err(y, normalise(s, xv, st.mean, st.var, gamma.to_vector(), beta.to_vector())) < 1e-6);
    CHECK(test::rel_err(save_mean, st.mean) < 1e-6);
    CHECK(test::rel_err(save_invstd, invstd) < 1e-6);
    CHECK(test::rel_err(rm, rm_ref) < 1e-6);
    CHECK(test::rel_err(rv, rv_ref) < 1e-6);
  }
}

TEST_CASE("norm: backward kernel matches the explicit Jacobian of the training forward", "[norm]") {
  uint64_t seed = 50;
  for (const Shape& s : kShapes) {
    INFO("input " << s);
    const int64_t C = s[1];
    Tensor x = test::random_tensor(s, seed++), dy = test::random_tensor(s, seed++);
    Tensor gamma = test::random_tensor(Shape{C}, seed++, 0.5f, 1.5f), beta = test::random_tensor(Shape{C}, seed++);
    Tensor rm = Tensor::zeros(Shape{C}), rv = Tensor::full(Shape{C}, 1.f);
    Tensor y = Tensor::empty(s), save_mean = Tensor::empty(Shape{C}), save_invstd = Tensor::empty(Shape{C});
    cpu::batchnorm_forward_train(x, gamma, beta, static_cast<float>(kEps), 0.1f, rm, rv, y, save_mean, save_invstd);
    Tensor dx = Tensor::full(s, kNaN), dgamma = Tensor::full(Shape{C}, kNaN), dbeta = Tensor::full(Shape{C}, kNaN);
    cpu::batchnorm_backward(x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);

    // y_j = g (x_j - mean) invstd + b, so dy_j/dx_i = g invstd (delta_ij - 1/m - xhat_i xhat_j / m).
    const std::vector<float> xv = x.to_vector(), dyv = dy.to_vector(), gv = gamma.to_vector();
    const Stats st = batch_stats(s, xv);
    std::vector<double> dx_ref(xv.size()), dg_ref(C), db_ref(C);
    for (int64_t c = 0; c < C; ++c) {
      const std::vector<int64_t> idx = channel_indices(s, c);
      const double m = static_cast<double>(idx.size()), invstd = 1.0 / std::sqrt(st.var[c] + kEps);
      auto xhat = [&](int64_t i) { return (xv[i] - st.mean[c]) * invstd; };
      for (int64_t i : idx) {
        double acc = 0;
        for (int64_t j : idx) acc += dyv[j] * gv[c] * invstd * ((i == j) - 1.0 / m - xhat(i) * xhat(j) / m);
        dx_ref[i] = acc;
        dg_ref[c] += dyv[i] * xhat(i);
        db_ref[c] += dyv[i];
      }
    }
    CHECK(test::rel_err(dx, dx_ref) < 1e-5);
    CHECK(test::rel_err(dgamma, dg_ref) < 1e-5);
    CHECK(test::rel_err(dbeta, db_ref) < 1e-5);
  }
}

TEST_CASE("norm: running statistics after two training steps (unbiased variance, momentum)", "[norm]") {
  const Shape s{3, 4, 2, 5};
  const double momentum = 0.1, m = 3 * 2 * 5;
  Tensor gamma = test::random_param(Shape{4}, 10), beta = test::random_param(Shape{4}, 11);
  Tensor rm = Tensor::zeros(Shape{4}), rv = Tensor::full(Shape{4}, 1.f);
  Tensor x1 = test::random_param(s, 12, -1.f, 2.f), x2 = test::random_param(s, 13, 0.f, 4.f);
  Tensor y1 = ops::batch_norm(x1, gamma, beta, rm, rv, true);
  ops::batch_norm(x2, gamma, beta, rm, rv, true);
  const Stats s1 = batch_stats(s, x1.to_vector()), s2 = batch_stats(s, x2.to_vector());
  std::vector<double> rm_ref, rv_ref;
  for (int c = 0; c < 4; ++c) {
    const double rm1 = momentum * s1.mean[c], rv1 = (1 - momentum) + momentum * s1.var[c] * m / (m - 1);
    rm_ref.push_back((1 - momentum) * rm1 + momentum * s2.mean[c]);
    rv_ref.push_back((1 - momentum) * rv1 + momentum * s2.var[c] * m / (m - 1));
  }
  CHECK(test::rel_err(rm, rm_ref) < 1e-6);
  CHECK(test::rel_err(rv, rv_ref) < 1e-6);
  CHECK(y1.requires_grad());
  CHECK_FALSE(rm.requires_grad());
  CHECK_FALSE(rv.requires_grad());
  CHECK(test::rel_err(y1, normalise(s, x1.to_vector(), s1.mean, s1.var, gamma.to_vector(), beta.to_vector())) < 1e-6);
}

TEST_CASE("norm: eval mode normalises with the running statistics and leaves them unchanged", "[norm]") {
  uint64_t seed = 20;
  for (const Shape& s : kShapes) {
    INFO("input " << s);
    const int64_t C = s[1];
    Tensor x = test::random_tensor(s, seed++);
    Tensor gamma = test::random_tensor(Shape{C}, seed++), beta = test::random_tensor(Shape{C}, seed++);
    Tensor rm = test::random_tensor(Shape{C}, seed++), rv = test::random_tensor(Shape{C}, seed++, 0.2f, 2.f);
    const std::vector<float> rm0 = rm.to_vector(), rv0 = rv.to_vector();
    Tensor y = ops::batch_norm(x, gamma, beta, rm, rv, false);
    CHECK(test::rel_err(y, normalise(s, x.to_vector(), as_double(rm0), as_double(rv0), gamma.to_vector(),
                                     beta.to_vector())) < 1e-6);
    CHECK(rm.to_vector() == rm0);
    CHECK(rv.to_vector() == rv0);
  }
}

TEST_CASE("norm: gradients of x, gamma and beta in training and eval modes", "[norm][autograd]") {
  uint64_t seed = 30;
  for (const Shape& s : {Shape{3, 2, 3, 2}, Shape{5, 3}}) {
    INFO("input " << s);
    const int64_t C = s[1];
    Tensor x = test::random_param(s, seed++), gamma = test::random_param(Shape{C}, seed++, 0.5f, 1.5f);
    Tensor beta = test::random_param(Shape{C}, seed++);
    Tensor rm = test::random_tensor(Shape{C}, seed++), rv = test::random_tensor(Shape{C}, seed++, 0.5f, 1.5f);
    for (bool training : {true, false}) {
      INFO("training=" << training);
      auto f = [&](const std::vector<Tensor>& in) { return ops::batch_norm(in[0], in[1], in[2], rm, rv, training); };
      CHECK(test::gradcheck(f, {x, gamma, beta}) < 1e-2);
    }
  }
}

TEST_CASE("norm: without gamma and beta the output is xhat and x still gets its gradient", "[norm][autograd]") {
  const Shape s{4, 3, 2, 2};
  Tensor x = test::random_param(s, 40);
  Tensor rm = Tensor::zeros(Shape{3}), rv = Tensor::full(Shape{3}, 1.f);
  Tensor y = ops::batch_norm(x, Tensor(), Tensor(), rm, rv, true);
  const Stats st = batch_stats(s, x.to_vector());
  CHECK(test::rel_err(y, normalise(s, x.to_vector(), st.mean, st.var, {1, 1, 1}, {0, 0, 0})) < 1e-6);
  Tensor none;
  auto f = [&](const std::vector<Tensor>& in) { return ops::batch_norm(in[0], none, none, none, none, true); };
  CHECK(test::gradcheck(f, {x}) < 1e-2);
}

TEST_CASE("norm: argument errors name the op, the shapes and what was expected", "[norm][errors]") {
  Tensor x = test::random_tensor(Shape{2, 3, 4, 4}, 1);
  Tensor rm = Tensor::zeros(Shape{3}), rv = Tensor::full(Shape{3}, 1.f), none;
  REQUIRE_THROWS_WITH(ops::batch_norm(x, test::random_tensor(Shape{4}, 2), none, rm, rv, true),
                      Catch::Contains("batch_norm: gamma [4] should be [3] for input [2, 3, 4, 4]"));
  REQUIRE_THROWS_WITH(ops::batch_norm(test::random_tensor(Shape{5}, 3), none, none, none, none, true),
                      Catch::Contains("batch_norm") && Catch::Contains("[5]") && Catch::Contains("rank >= 2"));
  REQUIRE_THROWS_WITH(ops::batch_norm(test::random_tensor(Shape{1, 3}, 3), none, none, rm, rv, true),
                      Catch::Contains("more than one value per channel") && Catch::Contains("[1, 3]"));
  REQUIRE_NOTHROW(ops::batch_norm(test::random_tensor(Shape{1, 3}, 3), none, none, rm, rv, false));
  REQUIRE_THROWS_WITH(ops::batch_norm(x, none, none, none, none, false), Catch::Contains("eval mode needs"));
  Tensor rm_param = test::random_param(Shape{3}, 4);
  REQUIRE_THROWS_WITH(ops::batch_norm(x, none, none, rm_param, rv, true), Catch::Contains("must not require grad"));
}

TEST_CASE("norm: a NaN or Inf in one channel makes that channel NaN, not the others", "[norm][nonfinite]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (float bad : {nan, inf}) {
    CAPTURE(bad);
    std::vector<float> v = test::random_tensor(Shape{2, 3, 2, 2}, 77).to_vector();
    v[4] = bad;  // sample 0, channel 1
    Tensor x = Tensor::from_vector(v, Shape{2, 3, 2, 2});
    Tensor gamma = Tensor::from_vector({1.f, 1.f, 1.f}, Shape{3}), beta = Tensor::zeros(Shape{3});
    Tensor rm = Tensor::zeros(Shape{3}), rv = Tensor::from_vector({1.f, 1.f, 1.f}, Shape{3});
    std::vector<float> y = ops::batch_norm(x, gamma, beta, rm, rv, true).to_vector();
    for (int n = 0; n < 2; ++n)
      for (int c = 0; c < 3; ++c)
        for (int i = 0; i < 4; ++i) CHECK(std::isnan(y[(n * 3 + c) * 4 + i]) == (c == 1));
    // The running mean of channel 1 takes the NaN / Inf (PyTorch does the same); 0 and 2 stay finite.
    std::vector<float> m = rm.to_vector();
    CHECK(!std::isfinite(m[1]));
    CHECK((std::isfinite(m[0]) && std::isfinite(m[2])));
  }
}

TEST_CASE("norm: kernels on large odd shapes with a large mean (threaded path and no cancellation)", "[norm]") {
  // Above the kernels' serial limit, with N = 1, C = 1 and odd rows; x in [1000, 1002): the mean
  // is ~1700 standard deviations from 0, where E[x^2] - E[x]^2 in float would lose every digit.
  const std::vector<Shape> shapes{Shape{64, 3, 14, 14}, Shape{1, 1, 211, 199}, Shape{5, 2, 7, 1003}, Shape{40000, 3}};
  uint64_t seed = 700;
  for (const Shape& s : shapes) {
    INFO("input " << s);
    const int64_t C = s[1];
    Tensor x = test::random_tensor(s, seed++, 1000.f, 1002.f), dy = test::random_tensor(s, seed++);
    Tensor gamma = test::random_tensor(Shape{C}, seed++, 0.5f, 1.5f), beta = test::random_tensor(Shape{C}, seed++);
    Tensor rm = Tensor::zeros(Shape{C}), rv = Tensor::full(Shape{C}, 1.f);
    Tensor y = Tensor::full(s, kNaN), save_mean = Tensor::full(Shape{C}, kNaN), save_invstd = Tensor::full(Shape{C}, kNaN);
    cpu::batchnorm_forward_train(x, gamma, beta, static_cast<float>(kEps), 0.1f, rm, rv, y, save_mean, save_invstd);
    const std::vector<float> xv = x.to_vector(), dyv = dy.to_vector(), gv = gamma.to_vector();
    const Stats st = batch_stats(s, xv);
    std::vector<double> invstd;
    for (int64_t c = 0; c < C; ++c) invstd.push_back(1.0 / std::sqrt(st.var[c] + kEps));
    CHECK(test::rel_err(y, normalise(s, xv, st.mean, st.var, gv, beta.to_vector())) < 1e-6);
    CHECK(test::rel_err(save_mean, st.mean) < 1e-6);
    CHECK(test::rel_err(save_invstd, invstd) < 1e-6);

    // The backward's closed form in double (the Jacobian test above checks the form itself), from
    // the saved float statistics it is given: their rounding is the forward's, not the backward's.
    const std::vector<float> sm = save_mean.to_vector(), si = save_invstd.to_vector();
    std::vector<double> dx_ref(xv.size()), dg_ref(C, 0.0), db_ref(C, 0.0);
    for (int64_t c = 0; c < C; ++c) {
      const std::vector<int64_t> idx = channel_indices(s, c);
      const double m = static_cast<double>(idx.size());
      for (int64_t i : idx) {
        db_ref[c] += dyv[i];
        dg_ref[c] += dyv[i] * (xv[i] - static_cast<double>(sm[c])) * si[c];
      }
      for (int64_t i : idx) {
        const double xhat = (xv[i] - static_cast<double>(sm[c])) * si[c];
        dx_ref[i] = gv[c] * static_cast<double>(si[c]) * (dyv[i] - db_ref[c] / m - xhat * dg_ref[c] / m);
      }
    }
    Tensor dx = Tensor::full(s, kNaN), dgamma = Tensor::full(Shape{C}, kNaN), dbeta = Tensor::full(Shape{C}, kNaN);
    cpu::batchnorm_backward(x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta);
    CHECK(test::rel_err(dx, dx_ref) < 1e-5);
    CHECK(test::rel_err(dgamma, dg_ref) < 1e-5);
    CHECK(test::rel_err(dbeta, db_ref) < 1e-5);
  }
}
