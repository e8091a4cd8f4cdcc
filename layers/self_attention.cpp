// SelfAttention layer, both variants (see self_attention.h).
#include "layers/self_attention.h"

#include "core/autograd.h"
#include "core/ops.h"

namespace ember {

const char* attention_variant_name(AttentionVariant v) { return v == AttentionVariant::Article ? "article" : "official"; }

AttentionVariant parse_attention_variant(const std::string& s) {
  if (s == "article") return AttentionVariant::Article;
  if (s == "official") return AttentionVariant::Official;
  EMBER_FAIL("attention variant: expected \"article\" or \"official\", got \"" << s << "\"");
}

SelfAttention::SelfAttention(int64_t c, AttentionVariant var, Generator& gen)
    : channels(c), key_channels(c / 8), value_channels(var == AttentionVariant::Article ? c : c / 2), variant(var) {
  EMBER_CHECK(c >= 8 && c % 8 == 0, "SelfAttention: channels must be a positive multiple of 8, got " << c);
  const bool bias = var == AttentionVariant::Article;
  auto conv1x1 = [&](int64_t in, int64_t out, bool with_bias) {
    return spectral_norm(std::make_shared<Conv2d>(in, out, 1, 1, 0, gen, with_bias), gen);
  };
  f = register_module("f", conv1x1(c, key_channels, bias));
  g = register_module("g", conv1x1(c, key_channels, false));
  h = register_module("h", conv1x1(c, value_channels, bias));
  if (var == AttentionVariant::Official) o = register_module("o", conv1x1(value_channels, c, false));
  gamma = Tensor::zeros(Shape{1});
  register_parameter("gamma", &gamma);
}

namespace {
Tensor flat(const Tensor& t) { return t.reshape({t.size(0), t.size(1), t.size(2) * t.size(3)}); }
}  // namespace

Tensor SelfAttention::queries(const Tensor& x) { return flat((*f)(x)); }

Tensor SelfAttention::keys(const Tensor& x) {
  Tensor k = (*g)(x);
  return flat(variant == AttentionVariant::Official ? ops::max_pool2x2(k) : k);
}

namespace {
// A projection for ops::self_attention_block: the raw weight, the bias and, under spectral norm,
// this step's u, v, sigma (advancing the power iteration when training; W / sigma is not formed).
ops::BlockProjection block_projection(Conv2d& conv) {
  ops::BlockProjection p;
  p.weight = conv.weight, p.bias = conv.bias;
  if (conv.has_spectral_norm()) {
    SpectralNorm& sn = conv.spectral_norm_state();
    sn.step(conv.weight, conv.is_training());
    p.u = sn.u, p.v = sn.v, p.sigma = sn.sigma;
  }
  return p;
}
}  // namespace

Tensor SelfAttention::forward(const Tensor& x) {
  EMBER_CHECK(x.defined() && x.dim() == 4 && x.size(1) == channels,
              "SelfAttention(" << channels << "): input must be [B, " << channels << ", H, W], got "
                               << (x.defined() ? x.shape().str() : "undefined"));
  EMBER_CHECK(variant == AttentionVariant::Article || (x.size(2) % 2 == 0 && x.size(3) % 2 == 0),
              "SelfAttention (official): H and W must be even for the 2x2 pooling, got " << x.shape());
  if (keep_input) last_input = x.detach();
  const ops::BlockProjection pf = block_projection(*f), pg = block_projection(*g), ph = block_projection(*h);
  const ops::BlockProjection po = o ? block_projection(*o) : ops::BlockProjection{};
  return ops::self_attention_block(x, pf, pg, ph, po, gamma, variant == AttentionVariant::Official);
}

Tensor SelfAttention::attention_map(const Tensor& x, const std::vector<int64_t>& query_positions) {
  NoGradGuard ng;
  const bool was_training = is_training();
  train(false);  // read-only: no power-iteration step, no batch statistics
  Tensor q, k;
  try {
    q = queries(x);
    k = keys(x);
  } catch (...) {
    train(was_training);
    throw;
  }
  train(was_training);
  return ops::attention_probs(q, k, query_positions);
}

}  // namespace ember
