// Writes tests/golden/self_attention_pre_fusion.safetensors. Built against the pre-fusion ember
// (commit d8adff0, composed SelfAttention), not by CMake: git archive d8adff0, build its libember.a,
// then g++ -O2 -std=c++17 -fopenmp -I<src> -I<build> this.cpp libember.a -ldl -o gen; ./gen <file>.
#include <cstdio>
#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "layers/self_attention.h"
using namespace ember;
int main(int argc, char** argv) {
  Generator gen(2026);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto variant : {AttentionVariant::Article, AttentionVariant::Official}) {
    const std::string p = std::string(attention_variant_name(variant)) + ".";
    SelfAttention a(16, variant, gen);
    a.gamma.fill_(0.7f);
    Tensor x = randn(Shape{2, 16, 8, 6}, gen);
    a.train();
    for (int i = 0; i < 3; ++i) { NoGradGuard ng; a(x); }  // u, v advanced a few steps
    for (auto& kv : a.state_dict()) out.emplace_back(p + "sd." + kv.first, kv.second.clone());
    out.emplace_back(p + "x", x);
    a.eval();
    { NoGradGuard ng; out.emplace_back(p + "y_eval", a(x)); }
    a.train();
    Tensor xg = x.clone();
    xg.requires_grad_(true);
    Tensor R = randn(x.shape(), gen);
    Tensor y = a(xg);
    ops::sum(ops::mul(y, R)).backward();
    out.emplace_back(p + "R", R);
    out.emplace_back(p + "y_train", y.detach());
    out.emplace_back(p + "grad.x", xg.grad());
    for (auto& kv : a.named_parameters()) out.emplace_back(p + "grad." + kv.first, kv.second.grad());
    for (auto& kv : a.named_buffers()) out.emplace_back(p + "after." + kv.first, kv.second.clone());
  }
  save_safetensors(argv[1], out, {{"written_by", "ember d8adff0 (composed SelfAttention, before ops::self_attention_block)"}});
  std::printf("wrote %zu tensors\n", out.size());
}
