// The SAGAN self-attention block on the CPU, in float, as one forward and one backward
// (ops::self_attention_block, core/ops/attention_block.cpp). CPU-only for now: the CUDA side of
// the op runs the composed ops until its fused kernels land.
//
//   x [B, C, H, W], N = H W.  Projections (1x1 convolutions, W [out, C], s = 1/sigma):
//     q = s_f Wf x + bf [B, dk, N];  k = s_g Wg x (+ bg);  v = s_h Wh x + bh
//   Official variant: k, v max-pooled 2x2 (M = N/4), then after the attention core an output
//   projection out = s_o Wo att [B, C, N]; article: out = att (dv = C, M = N).
//     att = attention(q, k, v) (kernels/attention.inc);  y = gamma out + x.
// W / sigma is never formed: 1/sigma is the GEMMs' alpha.
#pragma once
#include "core/tensor.h"

namespace ember::cpu {

// One 1x1 projection as the kernels see it: weight [out, in, 1, 1] (read as [out, in]), bias
// [out] or undefined, and the scale 1/sigma applied to W x.
struct BlockProjection {
  Tensor weight, bias;
  float scale = 1.0f;
};

// Indices into the projection arrays.
enum BlockSlot { kQuery = 0, kKey = 1, kValue = 2, kOut = 3 };

// What forward keeps for backward. q [B, dk, N], k [B, dk, M], v [B, dv, M], att [B, dv, N],
// lse [B, N]; official only: kfull [B, dk, H, W], vfull [B, dv, H, W] (the maps before the
// pooling, whose argmax routes the gradient). Keeping them costs (dk + dv) floats per pixel
// (0.625 C); recomputing them in backward would cost a second [dk + dv, C] GEMM per pixel.
struct BlockSaved {
  Tensor q, k, v, att, lse, kfull, vfull;
};

// y [B, C, H, W] (allocated by the caller) and the saved tensors (allocated here).
void attention_block_forward(const Tensor& x, const BlockProjection (&p)[4], const Tensor& gamma, bool official,
                             Tensor& y, BlockSaved& saved);

// Gradients: dx [B, C, H, W]; weight_grad[i] = dL/d(W_i / sigma_i) in W_i's shape (the caller
// turns it into the raw weight's gradient through sigma); bias_grad[i] only where p[i] has a bias;
// dgamma [1]. Slot kOut is unused in the article variant. Deterministic: weight and bias
// gradients are summed over the batch in order.
void attention_block_backward(const Tensor& x, const BlockProjection (&p)[4], const Tensor& gamma, bool official,
                              const BlockSaved& saved, const Tensor& dy, Tensor& dx, Tensor (&weight_grad)[4],
                              Tensor (&bias_grad)[4], Tensor& dgamma);

}  // namespace ember::cpu
