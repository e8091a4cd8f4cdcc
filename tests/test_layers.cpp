// Layers: Module bookkeeping (names, state_dict, strict loading), initialisation, and each
// layer's forward against a double-precision reference (tests/parity/naive.h), its gradients
// by finite differences, and spectral norm's power iteration against a converged SVD value.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "layers/batch_norm2d.h"
#include "layers/conv2d.h"
#include "layers/conv_transpose2d.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/self_attention.h"
#include "layers/stateless.h"
#include "tests/harness.h"
#include "tests/parity/naive.h"

using namespace ember;

namespace {

std::vector<std::string> names_of(const StateDict& sd) {
  std::vector<std::string> n;
  for (auto& kv : sd) n.push_back(kv.first);
  return n;
}

// A small composite: an own parameter, children, a list, a spectral-norm layer.
struct Net : Module {
  explicit Net(Generator& gen) {
    scale = Tensor::full(Shape{1}, 2.0f);
    register_parameter("scale", &scale);
    fc = register_module("fc", std::make_shared<Linear>(3, 2, gen));
    bn = register_module("bn", std::make_shared<BatchNorm2d>(2));
    convs = register_module("convs", std::make_shared<ModuleList>());
    convs->push_back(spectral_norm(std::make_shared<Conv2d>(2, 4, 3, 1, 1, gen), gen));
  }
  Tensor scale;
  std::shared_ptr<Linear> fc;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<ModuleList> convs;
};

double norm2(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

// The effective (spectrally normalised) weight in double, from the layer's stored u, v.
std::vector<double> sn_weight_eval(WeightLayer& l, int dim) {
  SpectralNorm& sn = l.spectral_norm_state();
  const double sigma = naive::bilinear(naive::matrix_view(l.weight, dim), sn.u.to_vector(), sn.v.to_vector());
  std::vector<double> w = naive::to_double(l.weight);
  for (double& x : w) x /= sigma;
  return w;
}

}  // namespace

// ---- Module ------------------------------------------------------------------------------------

TEST_CASE("layers: Module names parameters, buffers and children as PyTorch does", "[layers][module]") {
  Generator gen(1);
  Net net(gen);
  CHECK(names_of(net.named_parameters()) ==
        std::vector<std::string>{"scale", "fc.weight", "fc.bias", "bn.weight", "bn.bias", "convs.0.bias",
                                 "convs.0.weight_orig"});
  CHECK(names_of(net.named_buffers()) ==
        std::vector<std::string>{"bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "convs.0.weight_u",
                                 "convs.0.weight_v"});
  CHECK(names_of(net.state_dict()) ==
        std::vector<std::string>{"scale", "fc.weight", "fc.bias", "bn.weight", "bn.bias", "bn.running_mean",
                                 "bn.running_var", "bn.num_batches_tracked", "convs.0.bias", "convs.0.weight_orig",
                                 "convs.0.weight_u", "convs.0.weight_v"});
  for (auto& p : net.named_parameters()) CHECK(p.second.requires_grad());
  for (auto& b : net.named_buffers()) CHECK_FALSE(b.second.requires_grad());
  CHECK(net.bn->num_batches_tracked.shape() == Shape{});
  CHECK(net.num_parameters() == 1 + (6 + 2) + (2 + 2) + (4 + 4 * 2 * 9));
  CHECK(net.parameters().size() == 7);
  CHECK(net.device() == Device::CPU);
}

TEST_CASE("layers: registering a duplicate or dotted name is an error", "[layers][module][errors]") {
  struct Bad : Module {
    Tensor a = Tensor::zeros(Shape{1}), b = Tensor::zeros(Shape{1});
    void dup() {
      register_parameter("a", &a);
      register_buffer("a", &b);
    }
    void dotted() { register_parameter("x.y", &a); }
  };
  Bad m;
  REQUIRE_THROWS_WITH(m.dup(), Catch::Contains("'a' is already a parameter"));
  Bad m2;
  REQUIRE_THROWS_WITH(m2.dotted(), Catch::Contains("'x.y'"));
}

TEST_CASE("layers: train() and eval() reach every submodule", "[layers][module]") {
  Generator gen(2);
  Net net(gen);
  CHECK(net.is_training());
  net.eval();
  CHECK_FALSE(net.is_training());
  CHECK_FALSE(net.fc->is_training());
  CHECK_FALSE((*net.convs)[0]->is_training());
  net.train();
  CHECK((*net.convs)[0]->is_training());
}

TEST_CASE("layers: strict load_state_dict names every missing, unexpected and mis-shaped entry", "[layers][module][errors]") {
  Generator gen(3);
  Net a(gen), b(gen);
  StateDict sd = a.state_dict();
  // Remove one entry, add a stray one, change one shape.
  sd.erase(sd.begin() + 1);  // fc.weight
  sd.emplace_back("fc.weights", Tensor::zeros(Shape{2, 3}));
  for (auto& kv : sd)
    if (kv.first == "bn.running_var") kv.second = Tensor::zeros(Shape{3});
  std::vector<float> before = b.fc->bias.to_vector();
  try {
    b.load_state_dict(sd);
    FAIL("load_state_dict accepted a bad state_dict");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("missing keys: fc.weight"));
    CHECK_THAT(msg, Catch::Contains("unexpected keys: fc.weights"));
    CHECK_THAT(msg, Catch::Contains("bn.running_var (given [3], module has [2])"));
  }
  CHECK(b.fc->bias.to_vector() == before);  // nothing copied

  // Not strict: missing and unexpected are skipped, but a shape mismatch is still an error.
  REQUIRE_THROWS_WITH(b.load_state_dict(sd, false), Catch::Contains("bn.running_var"));
  for (auto& kv : sd)
    if (kv.first == "bn.running_var") kv.second = Tensor::full(Shape{2}, 3.0f);
  b.load_state_dict(sd, false);
  CHECK(b.bn->running_var.to_vector() == std::vector<float>{3.0f, 3.0f});
  CHECK(b.fc->bias.to_vector() == a.fc->bias.to_vector());
}

TEST_CASE("layers: load_state_dict copies into the existing tensors", "[layers][module]") {
  Generator gen(4);
  Net a(gen), b(gen);
  Tensor handle = b.convs->operator[](0)->named_parameters()[1].second;  // weight_orig, as an optimizer holds it
  b.load_state_dict(a.state_dict());
  for (auto& kv : a.state_dict()) {
    INFO(kv.first);
    bool found = false;
    for (auto& kb : b.state_dict())
      if (kb.first == kv.first) {
        CHECK(kb.second.to_vector() == kv.second.to_vector());
        CHECK_FALSE(kb.second.same(kv.second));
        found = true;
      }
    CHECK(found);
  }
  CHECK(handle.same(static_cast<WeightLayer&>(*(*b.convs)[0]).weight));
  CHECK(handle.to_vector() == static_cast<WeightLayer&>(*(*a.convs)[0]).weight.to_vector());
  b.to(Device::CPU);  // a no-op on the same device: handles kept
  CHECK(handle.same(static_cast<WeightLayer&>(*(*b.convs)[0]).weight));
}

// ---- initialisation ------------------------------------------------------------------------

TEST_CASE("layers: PyTorch default initialisation, fans as PyTorch computes them", "[layers][init]") {
  Generator gen(5);
  auto check_uniform = [](const Tensor& t, double bound) {
    std::vector<float> v = t.to_vector();
    double mx = 0, ss = 0;
    for (float x : v) mx = std::max(mx, std::abs(static_cast<double>(x))), ss += static_cast<double>(x) * x;
    CHECK(mx <= bound);
    CHECK(mx >= 0.9 * bound);
    CHECK(std::sqrt(ss / v.size()) == Approx(bound / std::sqrt(3.0)).epsilon(0.08));
  };
  Linear l(37, 41, gen);
  check_uniform(l.weight, 1 / std::sqrt(37.0));
  check_uniform(l.bias, 1 / std::sqrt(37.0));
  Conv2d c(6, 32, 3, 1, 1, gen);
  check_uniform(c.weight, 1 / std::sqrt(54.0));
  ConvTranspose2d t(40, 6, 4, 2, 1, gen);  // weight [40, 6, 4, 4]: fan_in = 6 * 16 (PyTorch's quirk)
  CHECK(t.weight.shape() == Shape{40, 6, 4, 4});
  check_uniform(t.weight, 1 / std::sqrt(96.0));
  CHECK(init::fans(t.weight) == std::make_pair<int64_t, int64_t>(96, 640));
  Tensor w = Tensor::empty(Shape{30, 20, 3, 3});
  init::xavier_uniform(w, gen);
  check_uniform(w, std::sqrt(6.0 / (180 + 270)));
  // The same seed gives the same weights.
  Generator g1(9), g2(9);
  CHECK(Linear(5, 3, g1).weight.to_vector() == Linear(5, 3, g2).weight.to_vector());
}

// ---- Linear, Conv2d, ConvTranspose2d ------------------------------------------------------

TEST_CASE("layers: Linear, Conv2d and ConvTranspose2d match double references", "[layers]") {
  Generator gen(6);
  SECTION("Linear, with and without bias, sizes 1 and prime") {
    for (bool bias : {true, false})
      for (auto sz : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {3, 7, 5}, {13, 11, 2}}) {
        Linear l(sz[1], sz[2], gen, bias);
        Tensor x = test::random_tensor(Shape{sz[0], sz[1]}, 10 + sz[1]);
        std::vector<double> xd = naive::to_double(x), w = naive::to_double(l.weight), ref(sz[0] * sz[2]);
        std::vector<double> b = bias ? naive::to_double(l.bias) : std::vector<double>(sz[2], 0.0);
        for (int64_t n = 0; n < sz[0]; ++n)
          for (int64_t o = 0; o < sz[2]; ++o) {
            double s = b[o];
            for (int64_t i = 0; i < sz[1]; ++i) s += xd[n * sz[1] + i] * w[o * sz[1] + i];
            ref[n * sz[2] + o] = s;
          }
        CHECK(test::rel_err(l(x), ref) < 1e-6);
      }
  }
  SECTION("Conv2d: 1x1, 3x3 pad 1, 4x4 stride 2, odd sizes") {
    struct C { int64_t n, ci, co, h, w; int k, s, p; bool bias; };
    for (C c : {C{1, 1, 1, 1, 1, 1, 1, 0, true}, C{2, 3, 5, 7, 5, 3, 1, 1, true}, C{3, 4, 2, 9, 8, 4, 2, 1, false}}) {
      Conv2d l(c.ci, c.co, c.k, c.s, c.p, gen, c.bias);
      Tensor x = test::random_tensor(Shape{c.n, c.ci, c.h, c.w}, 20 + c.h);
      int64_t ho, wo;
      auto ref = naive::conv2d(naive::to_double(x), c.n, c.ci, c.h, c.w, naive::to_double(l.weight), c.co, c.k,
                               c.bias ? naive::to_double(l.bias) : std::vector<double>{}, c.s, c.p, ho, wo);
      Tensor y = l(x);
      CHECK(y.shape() == Shape{c.n, c.co, ho, wo});
      CHECK(test::rel_err(y, ref) < 1e-6);
    }
  }
  SECTION("ConvTranspose2d: k4 s2 p1 (SAGAN), k4 s1 p0 (DCGAN's first), output padding") {
    struct C { int64_t n, ci, co, h, w; int k, s, p, op; bool bias; };
    for (C c : {C{2, 3, 5, 4, 3, 4, 2, 1, 0, true}, C{3, 7, 2, 1, 1, 4, 1, 0, 0, false}, C{1, 2, 3, 5, 5, 3, 2, 1, 1, true}}) {
      ConvTranspose2d l(c.ci, c.co, c.k, c.s, c.p, gen, c.bias, c.op);
      Tensor x = test::random_tensor(Shape{c.n, c.ci, c.h, c.w}, 30 + c.h);
      int64_t ho, wo;
      auto ref = naive::conv_transpose2d(naive::to_double(x), c.n, c.ci, c.h, c.w, naive::to_double(l.weight), c.co,
                                         c.k, c.bias ? naive::to_double(l.bias) : std::vector<double>{}, c.s, c.p,
                                         c.op, ho, wo);
      Tensor y = l(x);
      CHECK(y.shape() == Shape{c.n, c.co, ho, wo});
      CHECK(test::rel_err(y, ref) < 1e-6);
    }
  }
}

// ---- spectral norm -------------------------------------------------------------------------------

TEST_CASE("layers: spectral norm names, u/v initialisation and one power iteration per training forward",
          "[layers][spectral_norm]") {
  Generator gen(7);
  auto l = spectral_norm(std::make_shared<ConvTranspose2d>(6, 4, 3, 2, 1, gen), gen);
  CHECK(names_of(l->state_dict()) == std::vector<std::string>{"bias", "weight_orig", "weight_u", "weight_v"});
  SpectralNorm& sn = l->spectral_norm_state();
  CHECK(sn.dim == 1);
  CHECK(sn.u.shape() == Shape{4});       // rows = out channels for a transposed convolution
  CHECK(sn.v.shape() == Shape{6 * 9});
  CHECK(norm2(sn.u.to_vector()) == Approx(1.0).epsilon(1e-6));
  CHECK(norm2(sn.v.to_vector()) == Approx(1.0).epsilon(1e-6));
  REQUIRE_THROWS_WITH(l->enable_spectral_norm(gen), Catch::Contains("already applied"));

  Tensor x = test::random_tensor(Shape{2, 6, 3, 3}, 40);
  // Eval: u, v unchanged; output = conv_transpose(x, W / (u^T W v)).
  l->eval();
  std::vector<float> u0 = sn.u.to_vector(), v0 = sn.v.to_vector();
  Tensor y_eval = (*l)(x);
  CHECK(sn.u.to_vector() == u0);
  CHECK(sn.v.to_vector() == v0);
  int64_t ho, wo;
  auto ref = naive::conv_transpose2d(naive::to_double(x), 2, 6, 3, 3, sn_weight_eval(*l, 1), 4, 3,
                                     naive::to_double(l->bias), 2, 1, 0, ho, wo);
  CHECK(test::rel_err(y_eval, ref) < 1e-6);

  // Training: v = normalize(W^T u), u = normalize(W v) first, then the same with the new u, v.
  naive::Mat m = naive::matrix_view(l->weight, 1);
  std::vector<double> v1(m.cols), u1(m.rows);
  for (int64_t c = 0; c < m.cols; ++c)
    for (int64_t r = 0; r < m.rows; ++r) v1[c] += m.at(r, c) * u0[r];
  double nv = 0;
  for (double a : v1) nv += a * a;
  for (double& a : v1) a /= std::sqrt(nv);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c) u1[r] += m.at(r, c) * v1[c];
  double nu = 0;
  for (double a : u1) nu += a * a;
  for (double& a : u1) a /= std::sqrt(nu);
  l->train();
  Tensor y_train = (*l)(x);
  CHECK(test::rel_err(sn.u, u1) < 1e-6);
  CHECK(test::rel_err(sn.v, v1) < 1e-6);
  CHECK(sn.last_sigma() == Approx(std::sqrt(nu)).epsilon(1e-6));  // u1 . W v1 = ||W v1||
  ref = naive::conv_transpose2d(naive::to_double(x), 2, 6, 3, 3, sn_weight_eval(*l, 1), 4, 3,
                                naive::to_double(l->bias), 2, 1, 0, ho, wo);
  CHECK(test::rel_err(y_train, ref) < 1e-6);
}

TEST_CASE("layers: spectral norm converges to the top singular value, W / sigma has norm 1",
          "[layers][spectral_norm]") {
  Generator gen(8);
  std::vector<std::shared_ptr<WeightLayer>> layers = {
      spectral_norm(std::make_shared<Linear>(13, 7, gen), gen),
      spectral_norm(std::make_shared<Conv2d>(5, 3, 3, 1, 1, gen), gen),
      spectral_norm(std::make_shared<ConvTranspose2d>(6, 4, 4, 2, 1, gen), gen),
      spectral_norm(std::make_shared<Conv2d>(1, 1, 1, 1, 0, gen), gen)};
  std::vector<Tensor> inputs = {test::random_tensor(Shape{2, 13}, 1), test::random_tensor(Shape{1, 5, 4, 4}, 2),
                                test::random_tensor(Shape{1, 6, 3, 3}, 3), test::random_tensor(Shape{1, 1, 2, 2}, 4)};
  for (size_t i = 0; i < layers.size(); ++i) {
    WeightLayer& l = *layers[i];
    const int dim = dynamic_cast<ConvTranspose2d*>(&l) ? 1 : 0;
    NoGradGuard ng;
    for (int it = 0; it < 300; ++it) l(inputs[i]);
    const double top = naive::top_singular_value(naive::matrix_view(l.weight, dim));
    INFO("layer " << i << " weight " << l.weight.shape() << ": top singular value " << top);
    CHECK(std::abs(l.spectral_norm_state().last_sigma() - top) <= 1e-4 * top);
    // The weight actually used, W / sigma, has spectral norm 1.
    naive::Mat m = naive::matrix_view(l.weight, dim);
    for (double& a : m.a) a /= l.spectral_norm_state().last_sigma();
    CHECK(naive::top_singular_value(m) == Approx(1.0).epsilon(1e-4));
  }
}

TEST_CASE("layers: spectral-norm layers' gradients match finite differences", "[layers][spectral_norm][autograd]") {
  Generator gen(9);
  auto lin = spectral_norm(std::make_shared<Linear>(5, 3, gen), gen);
  auto conv = spectral_norm(std::make_shared<Conv2d>(2, 3, 3, 2, 1, gen), gen);
  auto convt = spectral_norm(std::make_shared<ConvTranspose2d>(3, 2, 4, 2, 1, gen), gen);
  // Eval mode: u, v fixed, so repeated evaluations see the same function (gradient through
  // both W and sigma = u^T W v).
  lin->eval(), conv->eval(), convt->eval();
  Tensor x1 = test::random_param(Shape{2, 5}, 50), x2 = test::random_param(Shape{2, 2, 5, 5}, 51),
         x3 = test::random_param(Shape{1, 3, 3, 3}, 52);
  CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return (*lin)(in[0]); }, {x1, lin->weight, lin->bias}) < 1e-2);
  CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return (*conv)(in[0]); }, {x2, conv->weight, conv->bias}) < 1e-2);
  CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return (*convt)(in[0]); }, {x3, convt->weight, convt->bias}) < 1e-2);
}

// ---- BatchNorm2d -----------------------------------------------------------------------------------

TEST_CASE("layers: BatchNorm2d training, running statistics and eval against a double reference", "[layers][batch_norm]") {
  const int64_t N = 3, C = 5, H = 3, W = 2, S = H * W;
  BatchNorm2d bn(C);
  Generator gen(10);
  uniform_(bn.weight, gen, 0.5f, 1.5f);
  uniform_(bn.bias, gen, -1.f, 1.f);
  Tensor x = test::random_tensor(Shape{N, C, H, W}, 60, -2.f, 3.f);
  std::vector<double> xd = naive::to_double(x), g = naive::to_double(bn.weight), b = naive::to_double(bn.bias);
  std::vector<double> ref(xd.size()), mean(C), var(C);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) s += xd[(n * C + c) * S + i];
    mean[c] = s / (N * S);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) ss += std::pow(xd[(n * C + c) * S + i] - mean[c], 2);
    var[c] = ss / (N * S);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i)
        ref[(n * C + c) * S + i] = (xd[(n * C + c) * S + i] - mean[c]) / std::sqrt(var[c] + 1e-5) * g[c] + b[c];
  }
  CHECK(test::rel_err(bn(x), ref) < 1e-6);
  std::vector<double> rm(C), rv(C);
  for (int64_t c = 0; c < C; ++c) {
    rm[c] = 0.1 * mean[c];
    rv[c] = 0.9 + 0.1 * var[c] * (N * S) / (N * S - 1);  // unbiased variance in the running estimate
  }
  CHECK(test::rel_err(bn.running_mean, rm) < 1e-6);
  CHECK(test::rel_err(bn.running_var, rv) < 1e-6);
  CHECK(bn.num_batches_tracked.item() == 1.0f);
  bn(x);
  CHECK(bn.num_batches_tracked.item() == 2.0f);

  bn.eval();
  std::vector<double> erm = naive::to_double(bn.running_mean), erv = naive::to_double(bn.running_var);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S; ++i)
        ref[(n * C + c) * S + i] = (xd[(n * C + c) * S + i] - erm[c]) / std::sqrt(erv[c] + 1e-5) * g[c] + b[c];
  CHECK(test::rel_err(bn(x), ref) < 1e-6);
  CHECK(bn.num_batches_tracked.item() == 2.0f);  // eval does not count
  CHECK(test::rel_err(bn.running_mean, erm) == 0.0);

  bn.train();
  Tensor xp = test::random_param(Shape{2, C, 2, 3}, 61);
  CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return bn(in[0]); }, {xp, bn.weight, bn.bias}) < 1e-2);
  REQUIRE_THROWS_WITH(bn(test::random_tensor(Shape{2, 4, 2, 2}, 1)), Catch::Contains("BatchNorm2d(5)"));
}

// ---- SelfAttention -------------------------------------------------------------------------------

namespace {

// y = gamma * o + x for the SelfAttention block in double, evaluated with the stored u, v (eval).
std::vector<double> attention_reference(SelfAttention& a, const Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), N = H * W;
  const bool official = a.variant == AttentionVariant::Official;
  auto proj = [&](Conv2d& conv, const std::vector<double>& in, int64_t h, int64_t w) {
    int64_t ho, wo;
    return naive::conv2d(in, B, conv.in_channels, h, w, sn_weight_eval(conv, 0), conv.out_channels, 1,
                         conv.bias.defined() ? naive::to_double(conv.bias) : std::vector<double>{}, 1, 0, ho, wo);
  };
  auto pool = [&](const std::vector<double>& in, int64_t ch) {
    std::vector<double> out(B * ch * (H / 2) * (W / 2));
    for (int64_t bc = 0; bc < B * ch; ++bc)
      for (int64_t i = 0; i < H / 2; ++i)
        for (int64_t j = 0; j < W / 2; ++j) {
          double m = -INFINITY;
          for (int di = 0; di < 2; ++di)
            for (int dj = 0; dj < 2; ++dj) m = std::max(m, in[(bc * H + 2 * i + di) * W + 2 * j + dj]);
          out[(bc * (H / 2) + i) * (W / 2) + j] = m;
        }
    return out;
  };
  std::vector<double> xd = naive::to_double(x);
  std::vector<double> q = proj(*a.f, xd, H, W), k = proj(*a.g, xd, H, W), v = proj(*a.h, xd, H, W);
  const int64_t dk = a.key_channels, dv = a.value_channels, M = official ? N / 4 : N;
  if (official) k = pool(k, dk), v = pool(v, dv);
  std::vector<double> o(B * dv * N, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < N; ++i) {
      std::vector<double> s(M);
      double mx = -INFINITY, z = 0;
      for (int64_t j = 0; j < M; ++j) {
        for (int64_t c = 0; c < dk; ++c) s[j] += q[(b * dk + c) * N + i] * k[(b * dk + c) * M + j];
        mx = std::max(mx, s[j]);
      }
      for (double& e : s) z += (e = std::exp(e - mx));
      for (int64_t c = 0; c < dv; ++c)
        for (int64_t j = 0; j < M; ++j) o[(b * dv + c) * N + i] += s[j] / z * v[(b * dv + c) * M + j];
    }
  if (official) o = proj(*a.o, o, H, W);
  const double gamma = a.gamma.item();
  std::vector<double> y(xd.size());
  for (size_t i = 0; i < y.size(); ++i) y[i] = gamma * o[i] + xd[i];
  (void)C;
  return y;
}

}  // namespace

TEST_CASE("layers: SelfAttention matches a double reference, both variants", "[layers][attention]") {
  Generator gen(11);
  for (auto variant : {AttentionVariant::Article, AttentionVariant::Official}) {
    const bool official = variant == AttentionVariant::Official;
    SelfAttention a(16, variant, gen);
    INFO(attention_variant_name(variant));
    CHECK(names_of(a.named_parameters()) ==
          (official ? std::vector<std::string>{"gamma", "f.weight_orig", "g.weight_orig", "h.weight_orig", "o.weight_orig"}
                    : std::vector<std::string>{"gamma", "f.bias", "f.weight_orig", "g.weight_orig", "h.bias",
                                               "h.weight_orig"}));
    CHECK(a.h->out_channels == (official ? 8 : 16));
    a.eval();
    // gamma starts at 0: the block is the identity.
    Tensor x = test::random_tensor(Shape{2, 16, official ? 6 : 5, official ? 4 : 3}, 70);
    CHECK(a(x).to_vector() == x.to_vector());
    a.gamma.fill_(0.8f);
    CHECK(test::rel_err(a(x), attention_reference(a, x)) < 1e-5);
    // One query pixel per batch, N = 1 (article variant only: the official one pools 2x2).
    if (!official) {
      Tensor x1 = test::random_tensor(Shape{3, 16, 1, 1}, 71);
      CHECK(test::rel_err(a(x1), attention_reference(a, x1)) < 1e-5);
    }
  }
}

TEST_CASE("layers: SelfAttention gradients of input, gamma and every projection", "[layers][attention][autograd]") {
  Generator gen(12);
  for (auto variant : {AttentionVariant::Article, AttentionVariant::Official}) {
    INFO(attention_variant_name(variant));
    SelfAttention a(8, variant, gen);
    a.eval();
    a.gamma.fill_(0.6f);
    Tensor x = test::random_param(Shape{2, 8, 4, 2}, 80);
    std::vector<Tensor> in = {x, a.gamma, a.f->weight, a.g->weight, a.h->weight};
    if (a.o) in.push_back(a.o->weight);
    CHECK(test::gradcheck([&](const std::vector<Tensor>& i) { return a(i[0]); }, in) < 1e-2);
    // In training mode every parameter receives a gradient.
    a.train();
    a.zero_grad();
    ops::sum(ops::mul(a(x), test::random_tensor(x.shape(), 81))).backward();
    for (auto& p : a.named_parameters()) {
      INFO(p.first);
      REQUIRE(p.second.grad().defined());
      CHECK(norm2(p.second.grad().to_vector()) > 0);
    }
  }
}

TEST_CASE("layers: SelfAttention attention_map gives the softmax rows of chosen queries", "[layers][attention]") {
  Generator gen(13);
  for (auto variant : {AttentionVariant::Article, AttentionVariant::Official}) {
    INFO(attention_variant_name(variant));
    SelfAttention a(16, variant, gen);
    const bool official = variant == AttentionVariant::Official;
    Tensor x = test::random_tensor(Shape{2, 16, 4, 6}, 90);
    std::vector<float> u0 = a.f->spectral_norm_state().u.to_vector();
    std::vector<int64_t> pos = {0, 7, 23};
    Tensor p = a.attention_map(x, pos);
    const int64_t M = official ? 6 : 24;
    REQUIRE(p.shape() == Shape{2, 3, M});
    CHECK(a.is_training());                                        // mode restored
    CHECK(a.f->spectral_norm_state().u.to_vector() == u0);         // no power-iteration step
    // Against the reference scores: softmax_j(f_i . g_j) with the eval-mode weights.
    int64_t ho, wo;
    std::vector<double> xd = naive::to_double(x);
    auto q = naive::conv2d(xd, 2, 16, 4, 6, sn_weight_eval(*a.f, 0), 2, 1,
                           a.f->bias.defined() ? naive::to_double(a.f->bias) : std::vector<double>{}, 1, 0, ho, wo);
    auto k = naive::conv2d(xd, 2, 16, 4, 6, sn_weight_eval(*a.g, 0), 2, 1, {}, 1, 0, ho, wo);
    if (official) {
      std::vector<double> kp(2 * 2 * 6);
      for (int64_t bc = 0; bc < 4; ++bc)
        for (int64_t i = 0; i < 2; ++i)
          for (int64_t j = 0; j < 3; ++j) {
            double m = -INFINITY;
            for (int di = 0; di < 2; ++di)
              for (int dj = 0; dj < 2; ++dj) m = std::max(m, k[(bc * 4 + 2 * i + di) * 6 + 2 * j + dj]);
            kp[(bc * 2 + i) * 3 + j] = m;
          }
      k = kp;
    }
    std::vector<double> ref;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i : pos) {
        std::vector<double> s(M);
        double z = 0;
        for (int64_t j = 0; j < M; ++j) {
          for (int64_t c = 0; c < 2; ++c) s[j] += q[(b * 2 + c) * 24 + i] * k[(b * 2 + c) * M + j];
        }
        double mx = *std::max_element(s.begin(), s.end());
        for (double& e : s) z += (e = std::exp(e - mx));
        for (double e : s) ref.push_back(e / z);
      }
    CHECK(test::rel_err(p, ref) < 1e-5);
  }
}

TEST_CASE("layers: SelfAttention argument errors", "[layers][attention][errors]") {
  Generator gen(14);
  REQUIRE_THROWS_WITH(SelfAttention(12, AttentionVariant::Article, gen), Catch::Contains("multiple of 8, got 12"));
  SelfAttention a(8, AttentionVariant::Official, gen);
  REQUIRE_THROWS_WITH(a(test::random_tensor(Shape{1, 8, 5, 4}, 1)), Catch::Contains("must be even"));
  REQUIRE_THROWS_WITH(a(test::random_tensor(Shape{1, 16, 4, 4}, 1)), Catch::Contains("[B, 8, H, W]"));
  REQUIRE_THROWS_WITH(parse_attention_variant("both"), Catch::Contains("\"both\""));
}

TEST_CASE("layers: parameter-free modules forward to their ops", "[layers]") {
  Tensor x = test::random_tensor(Shape{1, 2, 4, 4}, 100);
  CHECK(ReLU()(x).to_vector() == ops::relu(x).to_vector());
  CHECK(LeakyReLU(0.1f)(x).to_vector() == ops::leaky_relu(x, 0.1f).to_vector());
  CHECK(Tanh()(x).to_vector() == ops::tanh(x).to_vector());
  CHECK(AvgPool2x2()(x).shape() == Shape{1, 2, 2, 2});
  CHECK(MaxPool2x2()(x).to_vector() == ops::max_pool2x2(x).to_vector());
  CHECK(Upsample2x()(x).shape() == Shape{1, 2, 8, 8});
  CHECK(ReLU().state_dict().empty());
}
