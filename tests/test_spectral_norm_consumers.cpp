// The spectral-normalised consumers (CPU): ops::linear_sn, conv2d_sn and conv_transpose2d_sn
// apply 1/sigma in their bias epilogue instead of computing with W / sigma. Checked against the
// composed path they replace (op(x, spectral_normalized(w), b)) in value and in every gradient,
// against a double-precision formula (linear), by central finite differences with sigma a
// function of W (eval mode), with the backward reading the forward's u, v, sigma after a later
// step; the sigma_bias_add kernel itself; the layers never form W / sigma (the counter); errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/kernels.h"
#include "layers/conv2d.h"
#include "layers/conv_transpose2d.h"
#include "layers/linear.h"
#include "tests/harness.h"

using namespace ember;

namespace {

// One consumer: its input, weight and bias shapes, the spectral-norm dim, and the two paths.
struct Consumer {
  const char* name;
  Shape x, w;
  int64_t out;  // bias length
  int dim;
  std::function<Tensor(const Tensor&, const Tensor&, const Tensor&, const ops::SnScale&)> fused;
  std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)> plain;
};

std::vector<Consumer> consumers() {
  return {
      {"linear", Shape{5, 7}, Shape{4, 7}, 4, 0,
       [](const Tensor& x, const Tensor& w, const Tensor& b, const ops::SnScale& s) { return ops::linear_sn(x, w, b, s); },
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return ops::linear(x, w, b); }},
      {"conv2d 3x3 stride 2 pad 1", Shape{2, 3, 7, 6}, Shape{5, 3, 3, 3}, 5, 0,
       [](const Tensor& x, const Tensor& w, const Tensor& b, const ops::SnScale& s) {
         return ops::conv2d_sn(x, w, b, 2, 1, s);
       },
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return ops::conv2d(x, w, b, 2, 1); }},
      {"conv_transpose2d 4x4 stride 2 pad 1", Shape{2, 4, 3, 5}, Shape{4, 3, 4, 4}, 3, 1,
       [](const Tensor& x, const Tensor& w, const Tensor& b, const ops::SnScale& s) {
         return ops::conv_transpose2d_sn(x, w, b, 2, 1, 0, s);
       },
       [](const Tensor& x, const Tensor& w, const Tensor& b) { return ops::conv_transpose2d(x, w, b, 2, 1, 0); }},
  };
}

// u, v and sigma of a few training steps of w.
ops::SnScale stepped(const Tensor& w, int dim, uint64_t seed) {
  const int64_t rows = w.size(dim);
  ops::SnScale s{dim, test::random_unit(rows, seed), test::random_unit(w.numel() / rows, seed + 1), Tensor::zeros(Shape{1})};
  NoGradGuard ng;
  for (int i = 0; i < 3; ++i) ops::spectral_norm_step(w, dim, s.u, s.v, s.sigma, true);
  return s;
}

}  // namespace

TEST_CASE("sn consumers: value and gradients equal the composed W / sigma path", "[spectral_norm][sn_consumer]") {
  // The two paths differ only in where the division by sigma rounds: fp32 agreement (1e-5).
  uint64_t seed = 7000;
  for (const Consumer& k : consumers()) {
    for (bool with_bias : {true, false}) {
      CAPTURE(k.name, with_bias);
      Tensor x = test::random_param(k.x, ++seed), w = test::random_param(k.w, ++seed);
      Tensor b = with_bias ? test::random_param(Shape{k.out}, ++seed) : Tensor();
      ops::SnScale s = stepped(w.detach(), k.dim, ++seed);
      const Tensor sigma0 = s.sigma.clone();

      Tensor y = k.fused(x, w, b, s);
      Tensor yr = k.plain(x, ops::spectral_normalized(w, k.dim, s.u, s.v, s.sigma), b);
      CHECK(test::rel_err(y, yr) < 1e-5);
      CHECK(test::all_finite(y));

      // A later training step overwrites u, v, sigma in place (a discriminator's second forward):
      // both backwards must use the values of their own forward.
      {
        NoGradGuard ng;
        ops::spectral_norm_step(w.detach(), k.dim, s.u, s.v, s.sigma, true);
      }
      REQUIRE(s.sigma.item() != sigma0.item());
      Tensor r = test::random_tensor(y.shape(), ++seed);
      ops::sum(ops::mul(y, r)).backward();
      const Tensor gx = x.grad(), gw = w.grad(), gb = with_bias ? b.grad() : Tensor();
      x.zero_grad(), w.zero_grad();
      if (with_bias) b.zero_grad();
      ops::sum(ops::mul(yr, r)).backward();
      CHECK(test::rel_err(gx, x.grad()) < 1e-5);
      CHECK(test::rel_err(gw, w.grad()) < 1e-5);
      if (with_bias) CHECK(test::rel_err(gb, b.grad()) < 1e-5);
    }
  }
}

TEST_CASE("sn consumers: gradients by central finite differences (sigma a function of W)",
          "[spectral_norm][sn_consumer][gradcheck]") {
  // Eval-mode step inside f: sigma = u^T Wm v is recomputed from the probed W with u, v fixed,
  // so the differences see the path through sigma that the backward takes (PyTorch's semantics).
  // Tolerance 1e-2 as for the other fp32 gradchecks (float forward, double steps of 1e-3).
  uint64_t seed = 7100;
  for (const Consumer& k : consumers()) {
    CAPTURE(k.name);
    Tensor x = test::random_param(k.x, ++seed), w = test::random_param(k.w, ++seed);
    Tensor b = test::random_param(Shape{k.out}, ++seed);
    ops::SnScale s = stepped(w.detach(), k.dim, ++seed);
    auto f = [&](const std::vector<Tensor>& in) {
      {
        NoGradGuard ng;
        ops::spectral_norm_step(in[1].detach(), k.dim, s.u, s.v, s.sigma, false);
      }
      return k.fused(in[0], in[1], in[2], s);
    };
    CHECK(test::gradcheck(f, {x, w, b}, 1e-3, 48) < 1e-2);
  }
}

TEST_CASE("sn consumers: linear_sn against the formula in double", "[spectral_norm][sn_consumer]") {
  // y[n, o] = sum_i x[n, i] W[o, i] / sigma + b[o], sigma = u^T W v, all in double; 1e-6 relative.
  const int64_t N = 6, in = 9, out = 5;
  Tensor x = test::random_tensor(Shape{N, in}, 7201), w = test::random_tensor(Shape{out, in}, 7202);
  Tensor b = test::random_tensor(Shape{out}, 7203);
  const ops::SnScale s = stepped(w, 0, 7204);
  const std::vector<double> xd = test::to_double(x), wd = test::to_double(w), bd = test::to_double(b);
  const std::vector<double> ud = test::to_double(s.u), vd = test::to_double(s.v);
  double sigma = 0;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) sigma += ud[o] * wd[o * in + i] * vd[i];
  std::vector<double> ref(N * out);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < out; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < in; ++i) acc += xd[n * in + i] * wd[o * in + i];
      ref[n * out + o] = acc / sigma + bd[o];
    }
  CHECK(std::fabs(s.sigma.item() - sigma) / sigma < 1e-6);
  CHECK(test::rel_err(ops::linear_sn(x, w, b, s), ref) < 1e-6);
}

TEST_CASE("sn consumers: the sigma_bias_add kernel against double (in place and without bias)", "[sn_consumer]") {
  // [N, C] (inner 1) and [N, C, H, W]; the output starts as NaN so an unwritten element fails.
  for (const Shape& sh : {Shape{3, 5}, Shape{2, 3, 5, 7}}) {
    CAPTURE(sh);
    Tensor x = test::random_tensor(sh, 7301), b = test::random_tensor(Shape{sh[1]}, 7302);
    Tensor sigma = Tensor::full(Shape{1}, 1.7f);
    const std::vector<double> xd = test::to_double(x), bd = test::to_double(b);
    const int64_t inner = x.numel() / (sh[0] * sh[1]);
    std::vector<double> ref(xd.size()), ref_nb(xd.size());
    for (size_t i = 0; i < xd.size(); ++i) {
      ref_nb[i] = xd[i] / 1.7f;
      ref[i] = ref_nb[i] + bd[(i / inner) % sh[1]];
    }
    Tensor y = Tensor::full(sh, NAN);
    cpu::sigma_bias_add(x, sigma, b, y);
    CHECK(test::rel_err(y, ref) < 1e-6);
    cpu::sigma_bias_add(x, sigma, Tensor(), y);
    CHECK(test::rel_err(y, ref_nb) < 1e-6);
    Tensor z = x.clone();
    cpu::sigma_bias_add(z, sigma, b, z);  // y may alias x
    CHECK(test::rel_err(z, ref) < 1e-6);
  }
}

TEST_CASE("sn consumers: spectral-normalised layers never form W / sigma", "[spectral_norm][sn_consumer]") {
  // The counter of ops::spectral_normalized stays put through training forwards and backwards
  // of the three layers (and an eval forward), while the power iteration advances u.
  Generator gen(11);
  auto lin = spectral_norm(std::make_shared<Linear>(6, 4, gen), gen);
  auto conv = spectral_norm(std::make_shared<Conv2d>(3, 6, 3, 1, 1, gen), gen);
  auto convt = spectral_norm(std::make_shared<ConvTranspose2d>(4, 3, 4, 2, 1, gen), gen);
  const int64_t before = ops::spectral_normalized_count(Device::CPU);
  const std::vector<float> u0 = conv->spectral_norm_state().u.to_vector();
  for (bool training : {true, false}) {
    lin->train(training), conv->train(training), convt->train(training);
    Tensor h = (*conv)(test::random_param(Shape{2, 3, 5, 5}, 7401));  // [2, 6, 5, 5]
    Tensor t = (*convt)(test::random_param(Shape{2, 4, 3, 3}, 7402));  // [2, 3, 6, 6]
    Tensor y = (*lin)(h.reshape({50, 6}));
    if (training) ops::add(ops::sum(y), ops::sum(t)).backward();
  }
  CHECK(ops::spectral_normalized_count(Device::CPU) == before);
  CHECK(conv->spectral_norm_state().u.to_vector() != u0);
  // The counter counts: the composed path adds one.
  ops::spectral_normalized(conv->weight, 0, conv->spectral_norm_state().u, conv->spectral_norm_state().v,
                           conv->spectral_norm_state().sigma);
  CHECK(ops::spectral_normalized_count(Device::CPU) == before + 1);
}

TEST_CASE("sn consumers: bad spectral-norm state is reported with the shapes", "[spectral_norm][sn_consumer]") {
  Tensor x = test::random_tensor(Shape{2, 3}, 7501), w = test::random_tensor(Shape{4, 3}, 7502);
  ops::SnScale s{0, test::random_unit(4, 1), test::random_unit(3, 2), Tensor::full(Shape{1}, 1.f)};
  ops::SnScale bad_u = s, bad_sigma = s, bad_dim = s;
  bad_u.u = test::random_unit(3, 3);
  bad_sigma.sigma = Tensor::full(Shape{2}, 1.f);
  bad_dim.dim = 2;
  CHECK_THROWS_WITH(ops::linear_sn(x, w, Tensor(), bad_u), Catch::Contains("linear_sn: u must be [4]"));
  CHECK_THROWS_WITH(ops::linear_sn(x, w, Tensor(), bad_sigma), Catch::Contains("one element"));
  CHECK_THROWS_WITH(ops::linear_sn(x, w, Tensor(), bad_dim), Catch::Contains("dim 2 out of range"));
  Tensor xc = test::random_tensor(Shape{1, 3, 4, 4}, 7503), wc = test::random_tensor(Shape{4, 3, 3, 3}, 7504);
  ops::SnScale sc{0, test::random_unit(4, 4), test::random_unit(27, 5), Tensor::full(Shape{1}, 1.f)};
  ops::SnScale bad_v = sc;
  bad_v.v = test::random_unit(26, 6);
  CHECK_THROWS_WITH(ops::conv2d_sn(xc, wc, Tensor(), 1, 1, bad_v), Catch::Contains("conv2d_sn: v must be [27]"));
  CHECK_THROWS_WITH(ops::conv_transpose2d_sn(xc, wc, Tensor(), 1, 0, 0, sc), Catch::Contains("conv_transpose2d_sn"));
}
