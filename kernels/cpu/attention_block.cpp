// The SAGAN self-attention block on the CPU in float (kernels/attention_block.inc); tested against the
// composed ops (tests/test_attention_block.cpp) and, through the layer, a double reference.
//
// Passes over the feature map, forward: one read of x for all three projections (per batch
// entry, three GEMMs on the same cache-resident x_b), the pooling (official), the attention core
// (kernels/cpu/attention.cpp, tiled, never the N x M map), and the epilogue (output projection,
// gamma out + x) per batch entry. Backward: the epilogue's transpose (d att, dgamma), the
// attention backward, the unpooling (official), then dx = dy + the three projections'
// transposes in one pass per batch entry, and the weight gradients.
//
// Threads: per batch entry (GEMMs single-threaded inside); the weight- and bias-gradient sums
// over the batch run in batch order (threaded GEMMs), so results do not depend on the thread count.
#include <algorithm>
#include <vector>

#include "kernels/cpu/gemm_fallback.h"
#include "kernels/cpu/scratch.h"
#include "kernels/kernels.h"

namespace ember::cpu {

namespace {

using detail::gemm;
using detail::scratch;

struct Dims {
  int64_t B, C, H, W, N, dk, dv, M;
};

Dims dims_of(const Tensor& x, const BlockWeights& p, bool official) {
  const int64_t H = x.size(2), W = x.size(3);
  return Dims{x.size(0), x.size(1), H, W, H * W, p[kQuery].weight.size(0), p[kValue].weight.size(0),
              official ? (H / 2) * (W / 2) : H * W};
}

float scale_of(const BlockWeight& p) { return p.sigma.defined() ? 1.0f / p.sigma.item() : 1.0f; }

// out [rows, N] = W [rows, C] x [C, N] / sigma + bias (one batch entry).
void project(const BlockWeight& p, const float* x, int64_t C, int64_t N, float* out) {
  const int64_t rows = p.weight.size(0);
  gemm(false, false, rows, N, C, scale_of(p), p.weight.data(), C, x, N, 0.0f, out, N);
  if (!p.bias.defined()) return;
  const float* b = p.bias.data();
  for (int64_t r = 0; r < rows; ++r) {
    float* o = out + r * N;
    const float br = b[r];
#pragma omp simd
    for (int64_t n = 0; n < N; ++n) o[n] += br;
  }
}

// dx [C, N] += W^T [C, rows] d [rows, N] / sigma (one batch entry).
void project_transpose_add(const BlockWeight& p, const float* d, int64_t C, int64_t N, float* dx) {
  gemm(true, false, C, N, p.weight.size(0), scale_of(p), p.weight.data(), C, d, N, 1.0f, dx, N);
}

// G [rows, cols] = sum_b a_b [rows, N] c_b^T [N, cols], in batch order (a, c batch strides given).
void batch_outer_sum(const float* a, int64_t a_stride, const float* c, int64_t c_stride, int64_t B, int64_t rows,
                     int64_t cols, int64_t N, float* G) {
  for (int64_t b = 0; b < B; ++b)
    gemm(false, true, rows, cols, N, 1.0f, a + b * a_stride, N, c + b * c_stride, N, b == 0 ? 0.0f : 1.0f, G, cols);
}

bool parallel_over_batch(const Dims& d) { return d.B > 1 && d.B * d.N * d.C > 50000; }

}  // namespace

void attention_block_forward(const Tensor& x, const BlockWeights& p, const Tensor& gamma, bool official,
                             Tensor& y, BlockSaved& s) {
  const Dims d = dims_of(x, p, official);
  s.q = Tensor::empty(Shape{d.B, d.dk, d.N});
  s.att = Tensor::empty(Shape{d.B, d.dv, d.N});
  s.lse = Tensor::empty(Shape{d.B, d.N});
  // Article: k, v written straight by the projection; official: the full maps, pooled below.
  Tensor k_proj = Tensor::empty(Shape{d.B, d.dk, d.H, d.W}), v_proj = Tensor::empty(Shape{d.B, d.dv, d.H, d.W});
  const float* px = x.data();
  float *pq = s.q.data(), *pk = k_proj.data(), *pv = v_proj.data();
#pragma omp parallel for schedule(static) if (parallel_over_batch(d))
  for (int64_t b = 0; b < d.B; ++b) {
    const float* xb = px + b * d.C * d.N;  // [C, N]
    project(p[kQuery], xb, d.C, d.N, pq + b * d.dk * d.N);
    project(p[kKey], xb, d.C, d.N, pk + b * d.dk * d.N);
    project(p[kValue], xb, d.C, d.N, pv + b * d.dv * d.N);
  }
  if (official) {
    s.kfull = k_proj;
    s.vfull = v_proj;
    s.k = Tensor::empty(Shape{d.B, d.dk, d.H / 2, d.W / 2});
    s.v = Tensor::empty(Shape{d.B, d.dv, d.H / 2, d.W / 2});
    maxpool2x2_forward(k_proj, s.k);
    maxpool2x2_forward(v_proj, s.v);
    s.k = s.k.reshape({d.B, d.dk, d.M});
    s.v = s.v.reshape({d.B, d.dv, d.M});
  } else {
    s.k = k_proj.reshape({d.B, d.dk, d.N});
    s.v = v_proj.reshape({d.B, d.dv, d.N});
  }
  attention_forward(s.q, s.k, s.v, s.att, s.lse);

  // Epilogue: y = gamma out + x, out = s_o Wo att (official) or att. The output projection goes
  // to scratch and gamma is applied after it, so a NaN in att reaches y even when gamma is 0
  // (as in the composed ops).
  const float g = gamma.item();
  const float* patt = s.att.data();
  float* py = y.data();
#pragma omp parallel for schedule(static) if (parallel_over_batch(d))
  for (int64_t b = 0; b < d.B; ++b) {
    const float* ab = patt + b * d.dv * d.N;
    const float* out = ab;
    if (official) {
      float* o = scratch(d.C * d.N);
      project(p[kOut], ab, d.dv, d.N, o);
      out = o;
    }
    const float* xb = px + b * d.C * d.N;
    float* yb = py + b * d.C * d.N;
#pragma omp simd
    for (int64_t e = 0; e < d.C * d.N; ++e) yb[e] = g * out[e] + xb[e];
  }
}

void attention_block_backward(const Tensor& x, const BlockWeights& p, const Tensor& gamma, bool official,
                              const BlockSaved& s, const Tensor& dy, Tensor& dx, Tensor (&weight_grad)[4],
                              Tensor (&bias_grads)[4], Tensor& dgamma) {
  const Dims d = dims_of(x, p, official);
  const float g = gamma.item();
  const float *px = x.data(), *pdy = dy.data(), *patt = s.att.data();

  // 1. Epilogue transpose per batch entry: t = s_o Wo^T dy (official) or dy; d att = gamma t;
  //    dgamma = sum t . att (per-entry partial sums in double, added in order).
  Tensor datt = Tensor::empty(Shape{d.B, d.dv, d.N});
  float* pdatt = datt.data();
  std::vector<double> dgamma_part(d.B);
#pragma omp parallel for schedule(static) if (parallel_over_batch(d))
  for (int64_t b = 0; b < d.B; ++b) {
    const float* dyb = pdy + b * d.C * d.N;
    const float* t = dyb;
    if (official) {
      float* tb = scratch(d.dv * d.N);
      gemm(true, false, d.dv, d.N, d.C, scale_of(p[kOut]), p[kOut].weight.data(), d.dv, dyb, d.N, 0.0f, tb, d.N);
      t = tb;
    }
    const float* ab = patt + b * d.dv * d.N;
    float* datt_b = pdatt + b * d.dv * d.N;
    double acc = 0;
    for (int64_t e = 0; e < d.dv * d.N; ++e) {
      acc += static_cast<double>(t[e]) * ab[e];
      datt_b[e] = g * t[e];
    }
    dgamma_part[b] = acc;
  }
  double dg = 0;
  for (double v : dgamma_part) dg += v;
  dgamma.data()[0] = static_cast<float>(dg);
  if (official) {
    // dL/d(Wo / sigma_o) = gamma sum_b dy_b att_b^T (gamma applied last: see the forward's epilogue).
    float* G = weight_grad[kOut].data();
    batch_outer_sum(pdy, d.C * d.N, patt, d.dv * d.N, d.B, d.C, d.dv, d.N, G);
    for (int64_t e = 0; e < d.C * d.dv; ++e) G[e] *= g;
  }

  // 2. The attention core's backward, then the max-pool's (official: to the full-resolution maps).
  Tensor dq = Tensor::empty(s.q.shape()), dk = Tensor::empty(s.k.shape()), dv = Tensor::empty(s.v.shape());
  attention_backward(s.q, s.k, s.v, s.att, s.lse, datt, dq, dk, dv);
  if (official) {
    Tensor dk_full = Tensor::empty(s.kfull.shape()), dv_full = Tensor::empty(s.vfull.shape());
    maxpool2x2_backward(s.kfull, dk.reshape({d.B, d.dk, d.H / 2, d.W / 2}), dk_full);
    maxpool2x2_backward(s.vfull, dv.reshape({d.B, d.dv, d.H / 2, d.W / 2}), dv_full);
    dk = dk_full;
    dv = dv_full;
  }

  // 3. dx = dy + sum over the projections of s W^T d(projection), one pass per batch entry.
  const float *pdq = dq.data(), *pdk = dk.data(), *pdv = dv.data();
  float* pdx = dx.data();
#pragma omp parallel for schedule(static) if (parallel_over_batch(d))
  for (int64_t b = 0; b < d.B; ++b) {
    float* dxb = pdx + b * d.C * d.N;
    std::copy(pdy + b * d.C * d.N, pdy + (b + 1) * d.C * d.N, dxb);
    project_transpose_add(p[kQuery], pdq + b * d.dk * d.N, d.C, d.N, dxb);
    project_transpose_add(p[kKey], pdk + b * d.dk * d.N, d.C, d.N, dxb);
    project_transpose_add(p[kValue], pdv + b * d.dv * d.N, d.C, d.N, dxb);
  }

  // 4. Weight gradients dL/d(W / sigma) = sum_b d_b x_b^T, and the biases'.
  const float* dmaps[3] = {pdq, pdk, pdv};
  for (int i = kQuery; i <= kValue; ++i) {
    const int64_t rows = p[i].weight.size(0);
    batch_outer_sum(dmaps[i], rows * d.N, px, d.C * d.N, d.B, rows, d.C, d.N, weight_grad[i].data());
    if (p[i].bias.defined()) bias_grad(i == kQuery ? dq : i == kKey ? dk : dv, bias_grads[i]);
  }
}

}  // namespace ember::cpu
