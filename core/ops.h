// The differentiable operations: what layers, models and users call. Each one checks its
// arguments (errors name the op, the shapes received and what was expected), allocates its
// output on the inputs' device, runs the kernel through EMBER_DISPATCH and records an autograd
// node. Implementations: core/ops/<family>.cpp. Layers call only these.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

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
// Attention weights of chosen query positions, [B, nq, M]; no autograd.
Tensor attention_probs(const Tensor& q, const Tensor& k, const std::vector<int64_t>& query_positions);

// ---- spectral norm -------------------------------------------------------------------------------
// Returns w / sigma. In training, advances u, v one power iteration first (in place). sigma
// (one element) is written to `sigma_out`. Gradient flows to w only (u, v constants).
Tensor spectral_norm(const Tensor& w, int dim, Tensor& u, Tensor& v, Tensor& sigma_out, bool training,
                     float eps = 1e-12f);

// ---- losses (mean over elements) ------------------------------------------------------------------
Tensor hinge_loss(const Tensor& x, float sign);           // mean(relu(1 - sign*x))
Tensor bce_with_logits(const Tensor& x, const Tensor& target);
Tensor cross_entropy(const Tensor& logits, const Tensor& labels);  // labels [N] as float class indices

}  // namespace ember::ops
