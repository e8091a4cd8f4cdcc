// Optimisers (layers/optim.h over kernels/cpu/optim.cpp): Adam, SGD and the EMA of weights
// against double-precision recurrences, step counting, skipped parameters, and state round trips.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "layers/linear.h"
#include "layers/optim.h"
#include "tests/harness.h"

using namespace ember;

namespace {

// Parameters of awkward sizes (1, prime, 2-D, and one large enough for the kernels' threaded
// path with an odd length, vector_loops.h).
StateDict make_params(uint64_t seed) {
  StateDict p;
  p.emplace_back("a", test::random_param(Shape{1}, seed));
  p.emplace_back("b", test::random_param(Shape{7}, seed + 1));
  p.emplace_back("c", test::random_param(Shape{13, 5}, seed + 2));
  p.emplace_back("d", test::random_param(Shape{257, 131}, seed + 3));
  return p;
}

void set_grads(StateDict& p, uint64_t seed) {
  for (size_t i = 0; i < p.size(); ++i) p[i].second.set_grad(test::random_tensor(p[i].second.shape(), seed + i, -2.f, 2.f));
}

struct AdamRef {
  std::vector<double> p, m, v;
};

}  // namespace

TEST_CASE("optim: Adam matches the bias-corrected recurrence in double", "[optim]") {
  for (auto cfg : std::vector<std::array<float, 4>>{{1e-2f, 0.0f, 0.9f, 0.0f}, {3e-3f, 0.5f, 0.999f, 0.01f}}) {
    AdamOptions o;
    o.lr = cfg[0], o.beta1 = cfg[1], o.beta2 = cfg[2], o.weight_decay = cfg[3];
    INFO("lr " << o.lr << " betas " << o.beta1 << ", " << o.beta2 << " weight decay " << o.weight_decay);
    StateDict params = make_params(1);
    Adam adam(params, o);
    std::vector<AdamRef> ref;
    for (auto& kv : params) ref.push_back({test::to_double(kv.second), std::vector<double>(kv.second.numel()),
                                           std::vector<double>(kv.second.numel())});
    for (int t = 1; t <= 4; ++t) {
      set_grads(params, 100 * t);
      for (size_t i = 0; i < params.size(); ++i) {
        std::vector<double> g = test::to_double(params[i].second.grad());
        AdamRef& r = ref[i];
        for (size_t k = 0; k < g.size(); ++k) {
          double gk = g[k] + o.weight_decay * r.p[k];
          r.m[k] = o.beta1 * r.m[k] + (1 - o.beta1) * gk;
          r.v[k] = o.beta2 * r.v[k] + (1 - o.beta2) * gk * gk;
          double mh = r.m[k] / (1 - std::pow(o.beta1, t)), vh = r.v[k] / (1 - std::pow(o.beta2, t));
          r.p[k] -= o.lr * mh / (std::sqrt(vh) + o.eps);
        }
      }
      adam.step();
      CHECK(adam.steps() == t);
      for (size_t i = 0; i < params.size(); ++i) {
        INFO("step " << t << ", parameter " << params[i].first);
        CHECK(test::rel_err(params[i].second, ref[i].p) < 1e-6);
      }
    }
    StateDict st = adam.state_dict();
    REQUIRE(st.size() == 8);
    CHECK(st[0].first == "m.a");
    CHECK(st[6].first == "v.c");
    CHECK(test::rel_err(st[2].second, ref[2].m) < 1e-6);
    CHECK(test::rel_err(st[6].second, ref[2].v) < 1e-6);
    CHECK(test::rel_err(st[7].second, ref[3].v) < 1e-6);
  }
}

TEST_CASE("optim: parameters without a gradient are skipped", "[optim]") {
  StateDict params = make_params(2);
  Adam adam(params);
  std::vector<float> before = params[1].second.to_vector();
  params[0].second.set_grad(test::random_tensor(Shape{1}, 5));
  params[2].second.set_grad(test::random_tensor(Shape{13, 5}, 6));
  adam.step();
  CHECK(params[1].second.to_vector() == before);
  for (float x : adam.state_dict()[1].second.to_vector()) CHECK(x == 0.0f);  // m.b untouched
  adam.zero_grad();
  for (auto& kv : params) CHECK_FALSE(kv.second.grad().defined());
  adam.step();  // nothing to do, still counts
  CHECK(adam.steps() == 2);
}

TEST_CASE("optim: SGD with and without momentum matches PyTorch's recurrence", "[optim]") {
  for (float momentum : {0.0f, 0.9f}) {
    SGDOptions o;
    o.lr = 0.05f, o.momentum = momentum, o.weight_decay = 0.1f;
    StateDict params = make_params(3);
    SGD sgd(params, o);
    std::vector<std::vector<double>> p, buf;
    for (auto& kv : params) p.push_back(test::to_double(kv.second)), buf.emplace_back(kv.second.numel(), 0.0);
    for (int t = 1; t <= 3; ++t) {
      set_grads(params, 10 * t);
      for (size_t i = 0; i < params.size(); ++i) {
        std::vector<double> g = test::to_double(params[i].second.grad());
        for (size_t k = 0; k < g.size(); ++k) {
          double d = g[k] + o.weight_decay * p[i][k];
          if (momentum != 0) d = buf[i][k] = momentum * buf[i][k] + d;
          p[i][k] -= o.lr * d;
        }
      }
      sgd.step();
      for (size_t i = 0; i < params.size(); ++i) CHECK(test::rel_err(params[i].second, p[i]) < 1e-6);
    }
    CHECK(sgd.state_dict().size() == (momentum != 0 ? 4u : 0u));
  }
}

TEST_CASE("optim: optimizer state round-trips and is loaded strictly", "[optim][errors]") {
  StateDict pa = make_params(4), pb = make_params(4);
  AdamOptions o;
  o.lr = 1e-2f, o.beta1 = 0.5f;
  Adam a(pa, o), b(pb, o);
  set_grads(pa, 7);
  a.step();
  StateDict saved = a.state_dict();
  for (auto& kv : saved) kv.second = kv.second.clone();
  b.load_state_dict(saved);
  b.set_steps(a.steps());
  // Same parameters, same state: the next step is identical.
  set_grads(pa, 8);
  set_grads(pb, 8);
  for (size_t i = 0; i < pa.size(); ++i) pb[i].second.copy_(pa[i].second);
  a.step(), b.step();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].second.to_vector() == pb[i].second.to_vector());

  StateDict bad = saved;
  bad.pop_back();
  bad.emplace_back("v.e", Tensor::zeros(Shape{2}));
  bad[0].second = Tensor::zeros(Shape{2});
  REQUIRE_THROWS_WITH(b.load_state_dict(bad), Catch::Contains("missing: v.d") && Catch::Contains("unexpected: v.e") &&
                                                  Catch::Contains("m.a (given [2], expected [1])"));
  StateDict nograd = {{"x", test::random_tensor(Shape{2}, 1)}};
  REQUIRE_THROWS_WITH(Adam(nograd), Catch::Contains("'x'"));
}

TEST_CASE("optim: EMA of weights averages parameters and copies buffers", "[optim][ema]") {
  Generator gen(5);
  struct Net : Module {
    explicit Net(Generator& gen) {
      fc = register_module("fc", spectral_norm(std::make_shared<Linear>(4, 3, gen), gen));
    }
    std::shared_ptr<Linear> fc;
  };
  Net model(gen), shadow(gen);
  EMA ema(model, shadow, 0.75f);
  CHECK(shadow.fc->weight.to_vector() == model.fc->weight.to_vector());  // starts as a copy
  std::vector<double> e = test::to_double(model.fc->weight);
  for (int t = 0; t < 3; ++t) {
    uniform_(model.fc->weight, gen, -1.f, 1.f);
    uniform_(model.fc->spectral_norm_state().u, gen, -1.f, 1.f);
    std::vector<double> p = test::to_double(model.fc->weight);
    for (size_t k = 0; k < e.size(); ++k) e[k] = 0.75 * e[k] + 0.25 * p[k];
    ema.update();
    CHECK(test::rel_err(shadow.fc->weight, e) < 1e-6);
    CHECK(shadow.fc->spectral_norm_state().u.to_vector() == model.fc->spectral_norm_state().u.to_vector());
  }
  Linear other(4, 3, gen);
  REQUIRE_THROWS_WITH(EMA(model, other, 0.9f), Catch::Contains("load_state_dict"));
}

TEST_CASE("optim: a NaN or Inf gradient reaches the parameter (Adam, as torch.optim.Adam)", "[optim][nonfinite]") {
  // Nothing is skipped or clipped: the training loop's NaN guard must see the damage.
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    CAPTURE(bad);
    StateDict params = make_params(5);
    set_grads(params, 9);
    std::vector<float> g = params[1].second.grad().to_vector();
    g[3] = bad;
    params[1].second.set_grad(Tensor::from_vector(g, params[1].second.shape()));
    Adam adam(params);
    adam.step();
    std::vector<float> p = params[1].second.to_vector();
    CHECK(std::isnan(p[3]));  // m / sqrt(v) = inf / inf or nan
    for (size_t i = 0; i < p.size(); ++i)
      if (i != 3) CHECK(std::isfinite(p[i]));
    CHECK(test::all_finite(params[0].second));
  }
}
