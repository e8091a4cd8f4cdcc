// ops::self_attention_block on CUDA (kernels/cuda/attention_block.cu) against the CPU op, which
// tests/test_attention_block.cpp checks against the composed ops and finite differences. Value and
// the gradient of every input (x, gamma, each weight and bias; u, v, sigma are constants), both
// variants, with and without spectral norm; odd H, W and N, M not multiples of the tiles (64
// positions, 16 rows); C = 8 (dk = 1) up to 64 everywhere, and on GPUs the models' largest, 512,
// and real spatial sizes (the CPU test covers C = 512 against the composed ops). The core runs in
// 3xTF32 (Tf32Scope(false)), fp32-class, so the fp32 tolerance kFp32Tol (1e-5) applies. The kernel
// entries are also run directly on NaN-filled outputs (every element must be written), and the
// op profiler shows that a SelfAttention training step on CUDA writes no W / sigma. The fused op
// is also checked against the composed CUDA ops (value and every gradient, C up to 512), eval
// against training (the article's epilogue in the attention kernel writes no att in eval), and,
// under emulation, the launches per forward and backward are counted.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/profile.h"
#include "kernels/kernels.h"
#include "layers/self_attention.h"
#include "tests/cuda/compare.h"
#include "tests/harness.h"
#ifdef EMBER_EMULATION
#include "tests/emulation/emu.h"  // emu::launches()
#endif

using namespace ember;
using test::gpu::kEmulated;

namespace {

struct Case {
  int64_t B, C, H, W;
  bool official, sn;
};

std::string describe(const Case& c) {
  return std::string(c.official ? "official" : "article") + (c.sn ? " sn" : "") + " B=" + std::to_string(c.B) +
         " C=" + std::to_string(c.C) + " H=" + std::to_string(c.H) + " W=" + std::to_string(c.W);
}

Tensor unit(int64_t n, uint64_t seed) {
  std::vector<float> a = test::random_tensor(Shape{n}, seed).to_vector();
  double ss = 0;
  for (float x : a) ss += static_cast<double>(x) * x;
  for (float& x : a) x = static_cast<float>(x / std::sqrt(ss));
  return Tensor::from_vector(a, Shape{n});
}

// Inputs in a fixed layout: x, gamma, then per projection (f, g, h, o) weight, bias, u, v, sigma
// (undefined entries become empty [0] tensors that f() maps back to undefined).
struct Inputs {
  std::vector<Tensor> t;
  std::vector<bool> grad;
};

Inputs make_inputs(const Case& c, uint64_t seed) {
  Inputs in;
  in.t = {test::random_tensor(Shape{c.B, c.C, c.H, c.W}, seed, -2.f, 2.f), test::random_tensor(Shape{1}, seed + 1, 0.5f, 1.5f)};
  in.grad = {true, true};
  const int64_t dk = c.C / 8, dv = c.official ? c.C / 2 : c.C;
  const int64_t outs[4] = {dk, dk, dv, c.C}, ins[4] = {c.C, c.C, c.C, dv};
  const bool bias[4] = {!c.official, false, !c.official, false};
  for (int i = 0; i < 4; ++i) {
    const bool present = i < 3 || c.official;
    const float bound = 1.0f / std::sqrt(static_cast<float>(ins[i]));
    const uint64_t s = seed + 10 * (i + 1);
    Tensor w = present ? test::random_tensor(Shape{outs[i], ins[i], 1, 1}, s, -bound, bound) : Tensor::zeros(Shape{0});
    Tensor b = present && bias[i] ? test::random_tensor(Shape{outs[i]}, s + 1, -bound, bound) : Tensor::zeros(Shape{0});
    Tensor u = Tensor::zeros(Shape{0}), v = Tensor::zeros(Shape{0}), sigma = Tensor::zeros(Shape{0});
    if (present && c.sn) {
      u = unit(outs[i], s + 2), v = unit(ins[i], s + 3), sigma = Tensor::zeros(Shape{1});
      ops::spectral_norm_step(w, 0, u, v, sigma, /*training=*/true);
    }
    in.t.insert(in.t.end(), {w, b, u, v, sigma});
    in.grad.insert(in.grad.end(), {w.numel() > 0, b.numel() > 0, false, false, false});
  }
  return in;
}

ops::BlockProjection projection_at(const std::vector<Tensor>& t, int i) {
  auto opt = [](const Tensor& x) { return x.numel() > 0 ? x : Tensor(); };
  const size_t at = 2 + 5 * static_cast<size_t>(i);
  ops::BlockProjection p;
  p.weight = opt(t[at]), p.bias = opt(t[at + 1]), p.u = opt(t[at + 2]), p.v = opt(t[at + 3]), p.sigma = opt(t[at + 4]);
  return p;
}

// The kernels' view of the projections in `in`, on CUDA.
void cuda_weights(const Inputs& in, BlockWeights& p) {
  for (int i = 0; i < 4; ++i) {
    ops::BlockProjection q = projection_at(in.t, i);
    if (q.weight.defined())
      p[i] = BlockWeight{q.weight.to(Device::CUDA), q.bias.defined() ? q.bias.to(Device::CUDA) : Tensor(),
                         q.sigma.to(Device::CUDA)};
  }
}

// y and the gradient of sum(y R) for every input marked in in.grad, all on CUDA, through the
// fused op or the composed ops it replaces; returned on the CPU (y first).
std::vector<Tensor> value_and_grads(const Case& c, const Inputs& in, bool fused) {
  std::vector<Tensor> leaves;
  for (size_t i = 0; i < in.t.size(); ++i) {
    Tensor t = in.t[i].to(Device::CUDA);
    if (in.grad[i]) t.requires_grad_(true);
    leaves.push_back(t);
  }
  auto run = fused ? ops::self_attention_block : ops::self_attention_block_composed;
  Tensor y = run(leaves[0], projection_at(leaves, 0), projection_at(leaves, 1), projection_at(leaves, 2),
                 projection_at(leaves, 3), leaves[1], c.official);
  ops::sum(ops::mul(y, test::random_tensor(y.shape(), 777).to(Device::CUDA))).backward();
  std::vector<Tensor> out = {y.detach().to(Device::CPU)};
  for (size_t i = 0; i < leaves.size(); ++i)
    if (in.grad[i]) out.push_back(leaves[i].grad().to(Device::CPU));
  return out;
}

}  // namespace

TEST_CASE("attention_block: the fused CUDA op equals the composed CUDA ops in value and every gradient",
          "[attention_block]") {
  // The article variant's y comes from the attention kernel's epilogue, the official one's from
  // block_project's; the composed path runs the convolutions, pools, attention and gamma_residual
  // as separate ops. Both use the 3xTF32 core (fp32-class). Odd H, W; N and M not multiples of any
  // tile (64 positions, 16 rows, 64 queries, 32 keys); C = 8 (dk = 1) and the largest C of the
  // models' blocks (article 128: the SAGAN-32 model; official 512: the 32 model's ResNet G).
  // Tolerances as tests/test_attention_block.cpp's on the CPU (the same sums in a different
  // order): 2e-6 on y, 2e-5 on the gradients; measured under emulation <= 3.5e-7 on y and
  // <= 4.0e-6 on the gradients (the largest at C = 512 with spectral norm).
  // Under the sanitizers (compare.h kSanitized) the two large C become stand-ins reaching the same
  // branches (several reduction chunks and row tiles; official: two value chunks, dv = 136 > 128).
  test::gpu::Tf32Scope fp32(false);
  const int64_t big_article = test::gpu::kSanitized ? 64 : 128, big_official = test::gpu::kSanitized ? 272 : 512;
  const std::vector<Case> cases = {
      {2, 8, 5, 3, false, true},           {1, 8, 6, 10, true, true},          {1, big_article, 3, 5, false, true},
      {1, big_official, 4, 2, true, true}, {2, 16, 9, 7, false, false},
  };
  uint64_t seed = 1300;
  for (const Case& c : cases) {
    INFO(describe(c));
    const Inputs in = make_inputs(c, seed += 100);
    const std::vector<Tensor> fused = value_and_grads(c, in, true), composed = value_and_grads(c, in, false);
    REQUIRE(fused.size() == composed.size());
    REQUIRE(test::all_finite(fused[0]));
    CHECK(test::rel_err(fused[0], composed[0]) < 2e-6);
    for (size_t i = 1; i < fused.size(); ++i) {
      INFO("gradient " << i << " of " << fused.size() - 1 << " (x, gamma, then weights and biases in order)");
      REQUIRE(test::all_finite(fused[i]));
      CHECK(test::rel_err(fused[i], composed[i]) < 2e-5);
    }
  }
}

TEST_CASE("attention_block: eval on CUDA gives the training value and writes no att (article)",
          "[attention_block]") {
  // for_backward = false (the op sets it under no-grad): the article variant's attention kernel
  // writes y alone; the official variant still needs att for its output projection.
  test::gpu::Tf32Scope fp32(false);
  for (bool official : {false, true}) {
    const Case c{2, 16, 6, 4, official, true};
    INFO(describe(c));
    Inputs in = make_inputs(c, 1900);
    BlockWeights p;
    cuda_weights(in, p);
    Tensor x = in.t[0].to(Device::CUDA), gamma = in.t[1].to(Device::CUDA);
    Tensor y_train = test::gpu::nan_tensor(x.shape(), Device::CUDA), y_eval = test::gpu::nan_tensor(x.shape(), Device::CUDA);
    BlockSaved train, eval;
    eval.for_backward = false;
    cuda::attention_block_forward(x, p, gamma, official, y_train, train);
    cuda::attention_block_forward(x, p, gamma, official, y_eval, eval);
    CHECK(train.att.defined());
    CHECK(eval.att.defined() == official);
    CHECK(test::all_finite(y_eval.to(Device::CPU)));
    CHECK(y_eval.to_vector() == y_train.to_vector());
    // Through the op: no-grad mode takes that path and gives the same value.
    std::vector<Tensor> td;
    for (const Tensor& t : in.t) td.push_back(t.to(Device::CUDA));
    NoGradGuard ng;
    Tensor y_op = ops::self_attention_block(td[0], projection_at(td, 0), projection_at(td, 1), projection_at(td, 2),
                                            projection_at(td, 3), td[1], official);
    CHECK(y_op.to_vector() == y_train.to_vector());
  }
}

TEST_CASE("attention_block: the CUDA op matches the CPU op in value and every gradient", "[attention_block]") {
  test::gpu::Tf32Scope fp32(false);
  std::vector<Case> cases = {
      {2, 8, 5, 3, false, true},  {2, 8, 5, 3, false, false}, {2, 16, 6, 10, true, true},
      {1, 16, 10, 6, true, false}, {1, 64, 9, 8, false, true}, {1, 64, 4, 6, true, true},
  };
  // C = 512 (and the models' real spatial sizes) cost ~10x the rest under emulation, where C = 64
  // already reaches every branch (several reduction chunks and row tiles): GPU only.
  if (!kEmulated) {
    cases.push_back({1, 512, 4, 4, true, true});
    cases.push_back({4, 64, 32, 32, false, true});
    cases.push_back({2, 256, 32, 32, true, true});
  }
  uint64_t seed = 300;
  for (const Case& c : cases) {
    INFO(describe(c));
    Inputs in = make_inputs(c, seed += 100);
    auto f = [&](const std::vector<Tensor>& t) {
      return ops::self_attention_block(t[0], projection_at(t, 0), projection_at(t, 1), projection_at(t, 2),
                                       projection_at(t, 3), t[1], c.official);
    };
    test::gpu::compare_op(describe(c), f, in.t, test::gpu::kFp32Tol, in.grad);
  }
}

TEST_CASE("attention_block: the CUDA kernels write every output (NaN-filled first)", "[attention_block]") {
  test::gpu::Tf32Scope fp32(false);
  for (bool official : {false, true}) {
    const Case c{2, 16, 6, 4, official, true};
    INFO(describe(c));
    Inputs in = make_inputs(c, 900);
    BlockWeights p;
    cuda_weights(in, p);
    Tensor x = in.t[0].to(Device::CUDA), gamma = in.t[1].to(Device::CUDA);
    Tensor y = test::gpu::nan_tensor(x.shape(), Device::CUDA);
    BlockSaved saved;
    cuda::attention_block_forward(x, p, gamma, official, y, saved);
    CHECK(test::all_finite(y.to(Device::CPU)));
    Tensor dx = test::gpu::nan_tensor(x.shape(), Device::CUDA), dgamma = test::gpu::nan_tensor(Shape{1}, Device::CUDA);
    Tensor gw[4], gb[4];
    for (int i = 0; i < 4; ++i) {
      if (!p[i].weight.defined()) continue;
      gw[i] = test::gpu::nan_tensor(p[i].weight.shape(), Device::CUDA);
      if (p[i].bias.defined()) gb[i] = test::gpu::nan_tensor(p[i].bias.shape(), Device::CUDA);
    }
    cuda::attention_block_backward(x, p, gamma, official, saved, test::random_tensor(x.shape(), 901).to(Device::CUDA),
                                   dx, gw, gb, dgamma);
    CHECK(test::all_finite(dx.to(Device::CPU)));
    CHECK(test::all_finite(dgamma.to(Device::CPU)));
    for (int i = 0; i < 4; ++i) {
      INFO("projection " << i);
      if (gw[i].defined()) CHECK(test::all_finite(gw[i].to(Device::CPU)));
      if (gb[i].defined()) CHECK(test::all_finite(gb[i].to(Device::CPU)));
    }
  }
}

TEST_CASE("attention_block: a SelfAttention training step on CUDA writes no W / sigma", "[attention_block]") {
  // The op profiler counts every dispatched kernel; W / sigma is written only by
  // spectral_norm_scale (ops::spectral_normalized). The layer runs the spectral-norm step
  // (spectral_norm_power_iteration) and the fused block, which applies 1/sigma in its epilogues.
  for (auto variant : {AttentionVariant::Article, AttentionVariant::Official}) {
    INFO(attention_variant_name(variant));
    Generator gen(5);
    SelfAttention a(16, variant, gen);
    a.to(Device::CUDA);
    a.train();
    Tensor x = test::random_tensor(Shape{2, 16, 6, 4}, 950).to(Device::CUDA).requires_grad_(true);
    profile::enable();
    profile::reset();
    ops::sum(ops::mul(a(x), test::random_tensor(x.shape(), 951).to(Device::CUDA))).backward();
    const std::string table = profile::report();
    profile::disable();
    profile::reset();
    INFO(table);
    CHECK(table.find("spectral_norm_power_iteration") != std::string::npos);  // the step ran
    CHECK(table.find("attention_block_forward") != std::string::npos);
    CHECK(table.find("attention_block_backward") != std::string::npos);
    CHECK(table.find("spectral_norm_scale") == std::string::npos);  // no W / sigma
    // The composed path, for contrast, writes one W / sigma per projection.
    profile::enable();
    profile::reset();
    {
      NoGradGuard ng;
      ops::BlockProjection p[4];
      WeightLayer* layers[4] = {a.f.get(), a.g.get(), a.h.get(), a.o.get()};
      for (int i = 0; i < 4; ++i) {
        if (!layers[i]) continue;
        SpectralNorm& sn = layers[i]->spectral_norm_state();
        p[i].weight = layers[i]->weight, p[i].bias = layers[i]->bias, p[i].u = sn.u, p[i].v = sn.v, p[i].sigma = sn.sigma;
      }
      ops::self_attention_block_composed(x, p[0], p[1], p[2], p[3], a.gamma, variant == AttentionVariant::Official);
    }
    const std::string composed = profile::report();
    profile::disable();
    profile::reset();
    CHECK(composed.find("spectral_norm_scale") != std::string::npos);
  }
}

TEST_CASE("attention_block: the CUDA backward is deterministic (bitwise from run to run)", "[attention_block]") {
  // Weight gradients are batch sums: per-slice partials added in a fixed order, no atomics.
  test::gpu::Tf32Scope fp32(false);
  const Case c{5, 32, 8, 6, true, true};
  Inputs in = make_inputs(c, 990);
  auto grads = [&] {
    std::vector<Tensor> leaves;
    for (size_t i = 0; i < in.t.size(); ++i) {
      Tensor g = in.t[i].to(Device::CUDA);
      if (in.grad[i]) g.requires_grad_(true);
      leaves.push_back(g);
    }
    Tensor y = ops::self_attention_block(leaves[0], projection_at(leaves, 0), projection_at(leaves, 1),
                                         projection_at(leaves, 2), projection_at(leaves, 3), leaves[1], true);
    ops::sum(ops::mul(y, test::random_tensor(y.shape(), 991).to(Device::CUDA))).backward();
    std::vector<std::vector<float>> out = {y.to_vector()};
    for (size_t i = 0; i < leaves.size(); ++i)
      if (in.grad[i]) out.push_back(leaves[i].grad().to_vector());
    return out;
  };
  const auto a = grads(), b = grads();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("output " << i);
    CHECK(a[i] == b[i]);
  }
}

#ifdef EMBER_EMULATION
TEST_CASE("attention_block: launches per block forward and backward (counted by the emulator)",
          "[attention_block]") {
  // docs/kernels.md ("The fused block") explains each. Forward, article: block_project (q, k, v)
  // and attn_fwd with the epilogue y = gamma att + x (3 before the epilogue was fused: the
  // gamma-residual map); official: block_project x2 (q; k, v pooled), attn_fwd and block_project
  // (W_o with the residual). Backward, article: the gamma-residual backward (tree sum x2, map),
  // the attention backward (x4), dx (block_project x3), the weight sums (x2 each for f, g, h) and
  // the bias sums (x2 each for f, h) = 20; official: + the W_o transpose and its weight sum (3),
  // the pre-pool maps recomputed and unpooled (3), no biases = 22.
  test::gpu::Tf32Scope fp32(false);
  for (bool official : {false, true}) {
    const Case c{1, 16, 4, 6, official, true};
    INFO(describe(c));
    Inputs in = make_inputs(c, 2100);
    BlockWeights p;
    cuda_weights(in, p);
    Tensor x = in.t[0].to(Device::CUDA), gamma = in.t[1].to(Device::CUDA), y = Tensor::empty(x.shape(), Device::CUDA);
    Tensor dy = test::random_tensor(x.shape(), 2101).to(Device::CUDA);
    Tensor dx = Tensor::empty(x.shape(), Device::CUDA), dgamma = Tensor::empty(Shape{1}, Device::CUDA), gw[4], gb[4];
    for (int i = 0; i < 4; ++i) {
      if (!p[i].weight.defined()) continue;
      gw[i] = Tensor::empty(p[i].weight.shape(), Device::CUDA);
      if (p[i].bias.defined()) gb[i] = Tensor::empty(p[i].bias.shape(), Device::CUDA);
    }
    for (bool training : {true, false}) {
      INFO((training ? "training" : "eval"));
      BlockSaved saved;
      saved.for_backward = training;
      const uint64_t before = emu::launches();
      cuda::attention_block_forward(x, p, gamma, official, y, saved);
      CHECK(emu::launches() - before == (official ? 4u : 2u));
      if (!training) continue;
      const uint64_t mid = emu::launches();
      cuda::attention_block_backward(x, p, gamma, official, saved, dy, dx, gw, gb, dgamma);
      CHECK(emu::launches() - mid == (official ? 22u : 20u));
    }
  }
}
#endif
