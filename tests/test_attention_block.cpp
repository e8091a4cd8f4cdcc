// ops::self_attention_block (the whole SAGAN block as one op, CPU float fast path) against the
// composed ops it replaces (self_attention_block_composed: conv2d, spectral_normalized,
// max_pool2x2, attention, gamma_residual) in value and in every gradient, against finite
// differences, and the kernels' outputs fully written (NaN-filled first). The layer's value
// against a double reference is tests/test_layers.cpp ("SelfAttention matches a double reference").
//
// Tolerances. Both sides run float GEMMs over the same attention kernel; they differ only in where
// 1/sigma is applied (GEMM alpha vs a formed W / sigma, then spectral_norm_backward on either
// side) and in summation order. Measured on these shapes: <= 5.3e-7 forward, <= 6.6e-6 on the
// gradients (the largest: f.weight at C = 512 with spectral norm, a sum over N of products that
// nearly cancel through the softmax's (dP - D)); without spectral norm most agree exactly.
// Tolerances 2e-6 (values) and 2e-5 (gradients). Finite differences: measured 8e-4 and 1.7e-3
// (float forward, steps of 1e-3), tolerance 1e-2 as for the layer.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "kernels/kernels.h"
#include "layers/self_attention.h"
#include "tests/harness.h"

using namespace ember;

namespace {

// A block's parameters as leaves, with spectral-norm state when `sn`.
struct Block {
  bool official;
  ops::BlockProjection f, g, h, o;
  Tensor gamma;

  std::vector<ops::BlockProjection*> projections() { return {&f, &g, &h, &o}; }
  // Every leaf that requires grad, in a fixed order, with its name.
  std::vector<std::pair<std::string, Tensor>> leaves() {
    std::vector<std::pair<std::string, Tensor>> l = {{"gamma", gamma}};
    const char* names[] = {"f", "g", "h", "o"};
    int i = 0;
    for (auto* p : projections()) {
      if (p->weight.defined()) l.emplace_back(std::string(names[i]) + ".weight", p->weight);
      if (p->bias.defined()) l.emplace_back(std::string(names[i]) + ".bias", p->bias);
      ++i;
    }
    return l;
  }
};

ops::BlockProjection projection(int64_t in, int64_t out, bool bias, bool sn, uint64_t seed) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(in));
  ops::BlockProjection p;
  p.weight = test::random_param(Shape{out, in, 1, 1}, seed, -bound, bound);
  if (bias) p.bias = test::random_param(Shape{out}, seed + 1, -bound, bound);
  if (sn) {
    auto unit = [](int64_t n, uint64_t s) {
      std::vector<float> a = test::random_tensor(Shape{n}, s).to_vector();
      double ss = 0;
      for (float x : a) ss += static_cast<double>(x) * x;
      for (float& x : a) x = static_cast<float>(x / std::sqrt(ss));
      return Tensor::from_vector(a, Shape{n});
    };
    p.u = unit(out, seed + 2);
    p.v = unit(in, seed + 3);
    p.sigma = Tensor::zeros(Shape{1});
    ops::spectral_norm_step(p.weight, 0, p.u, p.v, p.sigma, /*training=*/true);
  }
  return p;
}

// The article block (f, h with biases, g without) or the official one (no biases, dv = C/2, o).
Block make_block(int64_t C, bool official, bool sn, uint64_t seed) {
  Block b{official};
  const int64_t dk = C / 8, dv = official ? C / 2 : C;
  b.f = projection(C, dk, !official, sn, seed);
  b.g = projection(C, dk, false, sn, seed + 10);
  b.h = projection(C, dv, !official, sn, seed + 20);
  if (official) b.o = projection(dv, C, false, sn, seed + 30);
  b.gamma = test::random_param(Shape{1}, seed + 40, 0.5f, 1.5f);
  return b;
}

Tensor run(Block& b, const Tensor& x, bool fused) {
  return fused ? ops::self_attention_block(x, b.f, b.g, b.h, b.o, b.gamma, b.official)
               : ops::self_attention_block_composed(x, b.f, b.g, b.h, b.o, b.gamma, b.official);
}

struct Result {
  Tensor y, dx;
  std::vector<Tensor> grads;  // in Block::leaves() order
};

// Forward, then backward of sum(y * R).
Result forward_backward(Block& b, const Tensor& x, const Tensor& R, bool fused) {
  x.impl()->grad = Tensor();
  for (auto& l : b.leaves()) l.second.impl()->grad = Tensor();
  Result r;
  r.y = run(b, x, fused);
  ops::sum(ops::mul(r.y, R)).backward();
  r.dx = x.grad();
  for (auto& l : b.leaves()) r.grads.push_back(l.second.grad());
  return r;
}

std::string shape_name(const Shape& s, bool official, bool sn) {
  return s.str() + (official ? " official" : " article") + (sn ? " with spectral norm" : " without spectral norm");
}

}  // namespace

TEST_CASE("attention_block: fused CPU op equals the composed ops in value and gradient", "[attention_block]") {
  struct Case {
    int64_t B, C, H, W;
    bool official;
  };
  // Odd H, W (article); N and M not multiples of the attention tiles (16 rows); C = 8 (dk = 1);
  // the models' largest C (512: the ResNet generator at 16x16 in the 32x32 model), and the
  // article's 64 at 32x32 with a batch of 2.
  const std::vector<Case> cases = {
      {2, 8, 5, 3, false}, {3, 16, 7, 9, false}, {2, 8, 6, 10, true},    {2, 16, 10, 6, true},
      {1, 512, 16, 16, true}, {2, 64, 32, 32, false}, {1, 128, 16, 16, false},
  };
  uint64_t seed = 100;
  for (const Case& c : cases)
    for (bool sn : {true, false}) {
      seed += 50;
      const Shape xs{c.B, c.C, c.H, c.W};
      INFO(shape_name(xs, c.official, sn));
      Block b = make_block(c.C, c.official, sn, seed);
      Tensor x = test::random_param(xs, seed + 45, -2.0f, 2.0f);
      Tensor R = test::random_tensor(xs, seed + 46);
      Result fused = forward_backward(b, x, R, true), composed = forward_backward(b, x, R, false);
      CHECK(test::rel_err(fused.y, composed.y) < 2e-6);
      CHECK(test::rel_err(fused.dx, composed.dx) < 2e-5);
      auto leaves = b.leaves();
      for (size_t i = 0; i < leaves.size(); ++i) {
        INFO("gradient of " << leaves[i].first);
        REQUIRE(fused.grads[i].defined());
        CHECK(test::rel_err(fused.grads[i], composed.grads[i]) < 2e-5);
      }
    }
}

TEST_CASE("attention_block: gradients match finite differences with sigma recomputed from W", "[attention_block][grad]") {
  for (bool official : {false, true}) {
    INFO((official ? "official" : "article"));
    Block b = make_block(8, official, true, official ? 900 : 800);
    Tensor x = test::random_param(Shape{2, 8, 4, 6}, 801);
    std::vector<Tensor> inputs = {x};
    for (auto& l : b.leaves()) inputs.push_back(l.second);
    // The spectral-norm step runs inside f (eval mode: sigma = u^T W v with u, v fixed), so the
    // finite differences see sigma move with W, as the analytic gradient does.
    auto f = [&](const std::vector<Tensor>&) {
      for (auto* p : b.projections())
        if (p->sigma.defined()) ops::spectral_norm_step(p->weight, 0, p->u, p->v, p->sigma, /*training=*/false);
      return ops::self_attention_block(x, b.f, b.g, b.h, b.o, b.gamma, official);
    };
    CHECK(test::gradcheck(f, inputs) < 1e-2);
  }
}

TEST_CASE("attention_block: the CPU kernels write every output (NaN-filled first)", "[attention_block][nonfinite]") {
  for (bool official : {false, true}) {
    INFO((official ? "official" : "article"));
    Block b = make_block(16, official, true, 700);
    Tensor x = test::random_tensor(Shape{2, 16, 6, 4}, 701);
    BlockWeights kp;
    int i = 0;
    for (auto* p : b.projections()) kp[i++] = BlockWeight{p->weight, p->bias, p->sigma};
    const float nan = std::numeric_limits<float>::quiet_NaN();
    Tensor y = Tensor::full(x.shape(), nan);
    BlockSaved saved;
    cpu::attention_block_forward(x, kp, b.gamma, official, y, saved);
    CHECK(test::all_finite(y));
    Tensor dx = Tensor::full(x.shape(), nan), dgamma = Tensor::full(Shape{1}, nan), gw[4], gb[4];
    for (int s = 0; s < 4; ++s) {
      if (!kp[s].weight.defined()) continue;
      gw[s] = Tensor::full(kp[s].weight.shape(), nan);
      if (kp[s].bias.defined()) gb[s] = Tensor::full(kp[s].bias.shape(), nan);
    }
    cpu::attention_block_backward(x, kp, b.gamma, official, saved, test::random_tensor(x.shape(), 702), dx, gw, gb,
                                  dgamma);
    CHECK(test::all_finite(dx));
    CHECK(test::all_finite(dgamma));
    for (int s = 0; s < 4; ++s) {
      INFO("projection " << s);
      if (gw[s].defined()) CHECK(test::all_finite(gw[s]));
      if (gb[s].defined()) CHECK(test::all_finite(gb[s]));
    }
  }
}

TEST_CASE("attention_block: backward is deterministic (bitwise from run to run)", "[attention_block]") {
  Block b = make_block(32, true, true, 600);
  Tensor x = test::random_param(Shape{4, 32, 8, 8}, 601);
  Tensor R = test::random_tensor(x.shape(), 602);
  Result r1 = forward_backward(b, x, R, true), r2 = forward_backward(b, x, R, true);
  CHECK(r1.y.to_vector() == r2.y.to_vector());
  CHECK(r1.dx.to_vector() == r2.dx.to_vector());
  for (size_t i = 0; i < r1.grads.size(); ++i) CHECK(r1.grads[i].to_vector() == r2.grads[i].to_vector());
}

TEST_CASE("attention_block: a NaN in x reaches y even with gamma 0 (as in the composed ops)", "[attention_block][nonfinite]") {
  Block b = make_block(16, true, false, 500);
  b.gamma.fill_(0.0f);
  std::vector<float> xv = test::random_tensor(Shape{1, 16, 4, 4}, 501).to_vector();
  xv[3] = std::nanf("");
  Tensor x = Tensor::from_vector(xv, Shape{1, 16, 4, 4});
  NoGradGuard ng;
  std::vector<float> fused = run(b, x, true).to_vector(), composed = run(b, x, false).to_vector();
  REQUIRE(fused.size() == composed.size());
  for (size_t i = 0; i < fused.size(); ++i) {
    INFO("element " << i);
    CHECK(std::isnan(fused[i]) == std::isnan(composed[i]));
  }
}

TEST_CASE("attention_block: argument errors name the projection and the shapes", "[attention_block][errors]") {
  Block b = make_block(16, false, true, 400);
  Tensor x = test::random_tensor(Shape{1, 16, 4, 4}, 401);
  auto call = [&](const Tensor& in, bool official) {
    return ops::self_attention_block(in, b.f, b.g, b.h, b.o, b.gamma, official);
  };
  CHECK_THROWS_WITH(call(test::random_tensor(Shape{1, 8, 4, 4}, 1), false),
                    Catch::Contains("projection f weight must be [2, 8, 1, 1]"));
  CHECK_THROWS_WITH(call(x, true), Catch::Contains("projection o has no weight"));
  CHECK_THROWS_WITH(call(test::random_tensor(Shape{16, 4, 4}, 1), false), Catch::Contains("x [B, C, H, W]"));
  ops::BlockProjection h = b.h;
  h.u = Tensor();
  CHECK_THROWS_WITH(ops::self_attention_block(x, b.f, b.g, h, b.o, b.gamma, false),
                    Catch::Contains("projection h: spectral norm needs all of u, v and sigma"));
  Block off = make_block(16, true, false, 402);
  CHECK_THROWS_WITH(ops::self_attention_block(test::random_tensor(Shape{1, 16, 5, 4}, 2), off.f, off.g, off.h, off.o,
                                              off.gamma, true),
                    Catch::Contains("must be even"));
}

TEST_CASE("attention_block: a SelfAttention checkpoint written before the fused op gives the same outputs",
          "[attention_block][checkpoint]") {
  // tests/golden/README.md: written by the composed layer (commit d8adff0).
  SafetensorsFile file = load_safetensors(std::string(EMBER_SOURCE_DIR) + "/tests/golden/self_attention_pre_fusion.safetensors");
  auto entries = [&](const std::string& prefix) {
    StateDict sd;
    for (const std::string& n : file.names)
      if (n.compare(0, prefix.size(), prefix) == 0) sd.emplace_back(n.substr(prefix.size()), file.get(n));
    return sd;
  };
  Generator gen(1);
  for (auto variant : {AttentionVariant::Article, AttentionVariant::Official}) {
    const std::string p = std::string(attention_variant_name(variant)) + ".";
    INFO(p);
    SelfAttention a(16, variant, gen);
    a.load_state_dict(entries(p + "sd."), /*strict=*/true);
    Tensor x = file.get(p + "x");
    a.eval();
    {
      NoGradGuard ng;
      CHECK(test::rel_err(a(x), file.get(p + "y_eval")) < 2e-6);
    }
    a.train();
    Tensor xg = x.clone();
    xg.requires_grad_(true);
    Tensor y = a(xg);
    CHECK(test::rel_err(y, file.get(p + "y_train")) < 2e-6);
    // The power-iteration step is the same kernel as before: the buffers agree exactly.
    for (auto& kv : a.named_buffers()) {
      INFO(kv.first);
      CHECK(kv.second.to_vector() == file.get(p + "after." + kv.first).to_vector());
    }
    ops::sum(ops::mul(y, file.get(p + "R"))).backward();
    CHECK(test::rel_err(xg.grad(), file.get(p + "grad.x")) < 2e-5);
    for (auto& kv : a.named_parameters()) {
      INFO("gradient of " << kv.first);
      CHECK(test::rel_err(kv.second.grad(), file.get(p + "grad." + kv.first)) < 2e-5);
    }
  }
}
