// The differentiable operations: what layers, models and users call. Each one checks its
// arguments (errors name the op, the shapes received and what was expected), allocates its
// output on the inputs' device, runs the kernel through EMBER_DISPATCH and records an autograd
// node. Implementations: core/ops/<family>.cpp. Layers call only these.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/spectral_norm_types.h"

namespace ember::ops {

// ---- elementwise (same shapes) ----------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, float alpha);              // alpha * x
Tensor add_scalar(const Tensor& x, float beta);          // x + beta
Tensor bias_add(const Tensor& x, const Tensor& bias);    // x [N, C, *] + bias [C]

// ---- activations ---------------------------------------------------------------------------
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float slope);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);

// ---- reductions ----------------------------------------------------------------------------
Tensor sum(const Tensor& x);                              // all elements -> one-element tensor [] (rank 0)
Tensor mean(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim = false);

// ---- shape -----------------------------------------------------------------------------------
// (reshape / flatten are Tensor methods.)
Tensor concat(const std::vector<Tensor>& xs);             // along dim 0
Tensor narrow(const Tensor& x, int64_t start, int64_t length);  // rows [start, start+length) of dim 0 (a copy)
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes);  // along dim 0

// ---- linear algebra --------------------------------------------------------------------------
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);  // 2-D or batched 3-D
// x [N, in], w [out, in], b [out] (may be undefined) -> [N, out]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

// ---- convolution -----------------------------------------------------------------------------
// x [N, Ci, H, W], w [Co, Ci, K, K], b [Co] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad);
// x [N, Ci, H, W], w [Ci, Co, K, K] (PyTorch's layout), output [N, Co, (H-1)s - 2p + K + out_pad, ...].
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad, int output_pad = 0);

// ---- spectral-normalised consumers ----------------------------------------------------------------
// The spectral-norm state of this step that a consumer applies as 1/sigma: w viewed along dim
// (0 for Linear and Conv2d, 1 for ConvTranspose2d), u [rows], v [cols] and sigma [1] from
// spectral_norm_step (or spectral_norm_step_group), on w's device.
struct SnScale {
  int dim = 0;
  Tensor u, v, sigma;
};
// linear / conv2d / conv_transpose2d with the weight w / sigma, without forming it: the op runs on
// the raw w and divides its output by sigma in the bias epilogue (y = op(x, w) / sigma + b, one
// pass, as the bias add alone was). Gradients equal those of op(x, spectral_normalized(w, ...), b):
// dx = op^T(dy / sigma, w), dW through sigma = u^T Wm v with u, v constants (u, v and sigma are
// copied for the backward, as spectral_normalized does).
Tensor linear_sn(const Tensor& x, const Tensor& w, const Tensor& b, const SnScale& sn);
Tensor conv2d_sn(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad, const SnScale& sn);
Tensor conv_transpose2d_sn(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad, int output_pad,
                           const SnScale& sn);

// ---- normalisation -----------------------------------------------------------------------------
// x [N, C, *]. Training mode updates running_mean/var in place (they never require grad).
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                  Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

// ---- pooling and resampling ------------------------------------------------------------------
Tensor avg_pool2x2(const Tensor& x);
Tensor max_pool2x2(const Tensor& x);
Tensor upsample2x(const Tensor& x);   // nearest

// ---- softmax and attention ---------------------------------------------------------------------
Tensor softmax(const Tensor& x);      // over the last dimension
// The SAGAN attention core (see kernels/attention.inc): q [B,dk,N], k [B,dk,M], v [B,dv,M] -> [B,dv,N].
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v);
// y = gamma * o + x, gamma one element.
Tensor gamma_residual(const Tensor& gamma, const Tensor& o, const Tensor& x);
// The whole SAGAN self-attention block (layers/self_attention.h) as one differentiable op.
// A projection is a 1x1 convolution: weight [out, in, 1, 1], bias [out] or undefined, and its
// spectral-norm state of this step (u [out], v [in], sigma [1] from spectral_norm_step; all three
// undefined without spectral norm). It computes (W x) / sigma + b: W / sigma is never formed;
// gradients reach W through sigma as with spectral_normalized.
struct BlockProjection {
  Tensor weight, bias, u, v, sigma;
};
// x [B, C, H, W] -> y = gamma * out + x. Article: f, g C -> dk, h C -> C, out = attention(f x,
// g x, h x). Official: g x and h x max-pooled 2x2 (H, W even), h C -> dv, out = o(attention(..)),
// o dv -> C (o unused in the article variant: leave it empty).
Tensor self_attention_block(const Tensor& x, const BlockProjection& f, const BlockProjection& g,
                            const BlockProjection& h, const BlockProjection& o, const Tensor& gamma, bool official);
// The same block composed from conv2d, spectral_normalized, max_pool2x2, attention and
// gamma_residual: the reference the fused op is tested against (and its CUDA path for now).
Tensor self_attention_block_composed(const Tensor& x, const BlockProjection& f, const BlockProjection& g,
                                     const BlockProjection& h, const BlockProjection& o, const Tensor& gamma,
                                     bool official);
// Attention weights of chosen query positions, [B, nq, M]; no autograd.
Tensor attention_probs(const Tensor& q, const Tensor& k, const std::vector<int64_t>& query_positions);

// ---- spectral norm -------------------------------------------------------------------------------
// Returns w / sigma. In training, advances u, v one power iteration first (in place). sigma
// (one element) is written to `sigma_out`. Gradient flows to w only (u, v constants).
Tensor spectral_norm(const Tensor& w, int dim, Tensor& u, Tensor& v, Tensor& sigma_out, bool training,
                     float eps = 1e-12f);
// The two halves of spectral_norm. The step: sigma_out from u, v (advanced one power iteration
// first when training); no autograd, nothing weight-sized written. The scale: w / sigma,
// differentiable in w through sigma = u^T Wm v (u, v, sigma copied for the backward).
void spectral_norm_step(const Tensor& w, int dim, Tensor& u, Tensor& v, Tensor& sigma_out, bool training,
                        float eps = 1e-12f);
Tensor spectral_normalized(const Tensor& w, int dim, const Tensor& u, const Tensor& v, const Tensor& sigma);
// How many W / sigma tensors spectral_normalized has written on `device` since the process began
// (atomic). The layers' consumers (linear_sn, ...) and self_attention_block never add to it:
// tests/cuda/test_spectral_norm.cpp checks that a model's training steps leave it unchanged.
int64_t spectral_normalized_count(Device device);
// spectral_norm_step for every item at once (a model's spectral-normalised weights, all on one
// device): the same u, v and sigma as stepping them one by one (bitwise), in one loop on the CPU
// and two launches (one in eval) per 24 weights on CUDA.
void spectral_norm_step_group(const std::vector<SnStepItem>& items, bool training);

// ---- losses (mean over elements) ------------------------------------------------------------------
Tensor hinge_loss(const Tensor& x, float sign);           // mean(relu(1 - sign*x))
Tensor bce_with_logits(const Tensor& x, const Tensor& target);
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);  // labels [N] as float class indices

}  // namespace ember::ops
