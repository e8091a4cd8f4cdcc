// Op entry for the SAGAN self-attention block (ops::self_attention_block): the whole block as
// one differentiable op, spectral norm applied as 1/sigma inside the projections (W / sigma is
// never formed). CPU: the float kernels of kernels/cpu/attention_block.cpp. CUDA: the fused
// kernels of kernels/cuda/attention_block.cu. In eval / no-grad, forward is told that nothing
// will be saved (BlockSaved::for_backward), so the CUDA article variant writes only y.
//
// Gradients: the kernels return dL/d(W / sigma) for each projection weight; the weight's own
// gradient goes through sigma = u^T W v exactly as in ops::spectral_normalized
// (spectral_norm_backward with this step's u, v, sigma), so the block's gradients equal the
// composed path's.
#include "core/ops/op_util.h"

namespace ember::ops {

namespace {

const char* const kOp = "self_attention_block";

bool has_sn(const BlockProjection& p) { return p.sigma.defined(); }

// A projection's weight [out, in, 1, 1], bias [out] and spectral-norm state, named in errors.
void check_projection(const char* name, const BlockProjection& p, int64_t in, int64_t out) {
  EMBER_CHECK(p.weight.defined(), kOp << ": projection " << name << " has no weight");
  EMBER_CHECK(p.weight.shape() == (Shape{out, in, 1, 1}),
              kOp << ": projection " << name << " weight must be [" << out << ", " << in << ", 1, 1], got "
                  << p.weight.shape());
  EMBER_CHECK(!p.bias.defined() || p.bias.shape() == Shape{out},
              kOp << ": projection " << name << " bias must be [" << out << "], got " << p.bias.shape());
  const bool sn_parts = p.u.defined() + p.v.defined() + p.sigma.defined();
  EMBER_CHECK(!sn_parts || (p.u.defined() && p.v.defined() && p.sigma.defined()),
              kOp << ": projection " << name << ": spectral norm needs all of u, v and sigma");
  if (has_sn(p)) {
    EMBER_CHECK(p.u.shape() == Shape{out} && p.v.shape() == Shape{in} && p.sigma.numel() == 1,
                kOp << ": projection " << name << ": u must be [" << out << "], v [" << in
                    << "] and sigma one element, got " << p.u.shape() << ", " << p.v.shape() << ", "
                    << p.sigma.shape());
  }
}

// x [B, C, H, W]; f, g to dk = weight rows, h to dv; o dv -> C (official only).
void check_block(const Tensor& x, const BlockProjection& f, const BlockProjection& g, const BlockProjection& h,
                 const BlockProjection& o, const Tensor& gamma, bool official) {
  detail::check_rank(kOp, x, 4, "x [B, C, H, W]");
  EMBER_CHECK(x.numel() > 0, kOp << ": empty input " << x.shape());
  EMBER_CHECK(f.weight.defined() && h.weight.defined(), kOp << ": projections f and h need weights");
  const int64_t C = x.size(1), dk = f.weight.size(0), dv = h.weight.size(0);
  check_projection("f", f, C, dk);
  check_projection("g", g, C, dk);
  check_projection("h", h, C, dv);
  if (official) {
    check_projection("o", o, dv, C);
    EMBER_CHECK(!o.bias.defined(), kOp << " (official): the output projection o has no bias (as in SAGAN)");
    EMBER_CHECK(x.size(2) % 2 == 0 && x.size(3) % 2 == 0,
                kOp << " (official): H and W must be even for the 2x2 pooling, got " << x.shape());
  } else {
    EMBER_CHECK(!o.weight.defined(), kOp << " (article): there is no output projection o");
    EMBER_CHECK(dv == C, kOp << " (article): h must map " << C << " channels to " << C << ", got " << dv);
  }
  detail::check_defined(kOp, gamma, "gamma");
  EMBER_CHECK(gamma.numel() == 1, kOp << ": gamma must have one element, got " << gamma.shape());
}

// The weight a projection computes with, for the composed path: W / sigma (differentiable) or W.
Tensor effective(const BlockProjection& p) {
  return has_sn(p) ? spectral_normalized(p.weight, 0, p.u, p.v, p.sigma) : p.weight;
}

Tensor flat(const Tensor& t) { return t.reshape({t.size(0), t.size(1), t.size(2) * t.size(3)}); }

// A projection's state frozen for backward: u, v, sigma are advanced in place by the next step.
BlockProjection snapshot(const BlockProjection& p) {
  BlockProjection s;
  s.weight = p.weight.detach();
  if (p.bias.defined()) s.bias = p.bias.detach();
  if (has_sn(p)) s.u = p.u.clone(), s.v = p.v.clone(), s.sigma = p.sigma.clone();
  return s;
}

BlockWeight kernel_view(const BlockProjection& p) { return BlockWeight{p.weight, p.bias, p.sigma}; }

// dL/dW from dL/d(W / sigma) (or the same tensor without spectral norm).
Tensor raw_weight_grad(const BlockProjection& p, const Tensor& g_eff) {
  if (!has_sn(p)) return g_eff;
  Tensor dw = detail::empty_like(p.weight);
  EMBER_DISPATCH("spectral_norm backward", p.weight.device(), spectral_norm_backward, p.weight, 0, p.u, p.v,
                 p.sigma, g_eff, dw);
  return dw;
}

Tensor block(const Tensor& x, const BlockProjection (&proj)[4], const Tensor& gamma, bool official, Device d) {
  BlockWeights kp;
  for (int i = 0; i < 4; ++i)
    if (proj[i].weight.defined()) kp[i] = kernel_view(proj[i]);
  std::vector<Tensor> inputs = {x, gamma};
  for (const BlockProjection& p : proj) inputs.push_back(p.weight), inputs.push_back(p.bias);
  Tensor y = detail::empty_like(x);
  auto saved = std::make_shared<BlockSaved>();
  saved->for_backward = any_requires_grad(inputs);
  EMBER_DISPATCH(kOp, d, attention_block_forward, x, kp, gamma, official, y, *saved);
  if (!saved->for_backward) return y;

  BlockProjection snap[4];
  for (int i = 0; i < 4; ++i)
    if (proj[i].weight.defined()) snap[i] = snapshot(proj[i]);
  Tensor sx = x.detach(), sg = gamma.detach();
  record(kOp, y, inputs, [sx, sg, snap, saved, official, d](const Tensor& dy) {
    BlockWeights kp;
    Tensor g_eff[4], db[4];
    for (int i = 0; i < 4; ++i) {
      if (!snap[i].weight.defined()) continue;
      kp[i] = kernel_view(snap[i]);
      g_eff[i] = detail::empty_like(snap[i].weight);
      if (snap[i].bias.defined()) db[i] = detail::empty_like(snap[i].bias);
    }
    Tensor dx = detail::empty_like(sx), dgamma = detail::empty_like(sg);
    EMBER_DISPATCH("self_attention_block backward", d, attention_block_backward, sx, kp, sg, official, *saved, dy, dx,
                   g_eff, db, dgamma);
    std::vector<Tensor> grads = {dx, dgamma};
    for (int i = 0; i < 4; ++i) {
      grads.push_back(snap[i].weight.defined() ? raw_weight_grad(snap[i], g_eff[i]) : Tensor());
      grads.push_back(db[i]);
    }
    return grads;
  });
  return y;
}

}  // namespace

Tensor self_attention_block_composed(const Tensor& x, const BlockProjection& f, const BlockProjection& g,
                                     const BlockProjection& h, const BlockProjection& o, const Tensor& gamma,
                                     bool official) {
  check_block(x, f, g, h, o, gamma, official);
  Tensor q = flat(conv2d(x, effective(f), f.bias, 1, 0));  // [B, dk, N]
  Tensor k = conv2d(x, effective(g), g.bias, 1, 0);        // [B, dk, H, W]
  Tensor v = conv2d(x, effective(h), h.bias, 1, 0);        // [B, dv, H, W]
  if (official) k = max_pool2x2(k), v = max_pool2x2(v);
  Tensor att = attention(q, flat(k), flat(v));  // [B, dv, N]
  Tensor out = att.reshape({x.size(0), h.weight.size(0), x.size(2), x.size(3)});
  if (official) out = conv2d(out, effective(o), o.bias, 1, 0);
  return gamma_residual(gamma, out, x);
}

Tensor self_attention_block(const Tensor& x, const BlockProjection& f, const BlockProjection& g,
                            const BlockProjection& h, const BlockProjection& o, const Tensor& gamma, bool official) {
  check_block(x, f, g, h, o, gamma, official);
  const Device d = ember::detail::common_device(
      kOp, {&x, &gamma, &f.weight, &f.bias, &f.u, &f.v, &f.sigma, &g.weight, &g.bias, &g.u, &g.v, &g.sigma, &h.weight,
            &h.bias, &h.u, &h.v, &h.sigma, &o.weight, &o.bias, &o.u, &o.v, &o.sigma});
  const BlockProjection proj[4] = {f, g, h, official ? o : BlockProjection{}};
  return block(x, proj, gamma, official, d);
}

}  // namespace ember::ops
