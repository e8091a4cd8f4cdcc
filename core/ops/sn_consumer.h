// Helpers of the spectral-normalised consumers (ops::linear_sn, conv2d_sn, conv_transpose2d_sn;
// core/ops/spectral_norm.cpp): the consumer runs on the raw weight and applies 1/sigma in its bias
// epilogue; these hold the parts the three share. Not part of the public API.
#pragma once
#include "core/ops/op_util.h"

namespace ember::ops::detail {

// The state a consumer's backward reads, frozen at forward time: u, v and sigma are advanced in
// place by the next training forward (a discriminator runs twice before one backward).
struct SnSaved {
  Tensor w;  // detached raw weight
  int dim = 0;
  Tensor u, v, sigma;
};

// Checks sn against w (shapes, device, no grad on the buffers), naming op; returns dim >= 0.
int check_sn_scale(const char* op, const Tensor& w, const SnScale& sn);
// Copies of sn for the backward (clones of u, v, sigma; w detached).
SnSaved save_sn(const Tensor& w, int dim, const SnScale& sn);
// z = z / sigma + b in place (b may be undefined): the forward epilogue.
void sn_epilogue(const char* op, Tensor& z, const Tensor& sigma, const Tensor& b);
// dy / sigma: the gradient the raw op's input-gradient kernel reads (d(op(x, W/sigma))/dx).
Tensor sn_scale_grad(const char* op, const Tensor& dy, const Tensor& sigma);
// dL/dW from g = dL/d(W / sigma) (the raw op's weight-gradient kernel on the unscaled dy), through
// sigma = u^T Wm v: the gradient spectral_normalized's backward gives.
Tensor sn_weight_grad(const char* op, const SnSaved& s, const Tensor& g);
// db[c] = sum over all but dim 1 of dy.
Tensor bias_grad_of(const char* op, const Tensor& dy);

}  // namespace ember::ops::detail
