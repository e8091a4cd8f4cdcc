// The argument types of the self-attention block kernels (kernels/attention_block.inc), shared by
// both backends.
#pragma once
#include "core/tensor.h"

namespace ember {

// One 1x1 projection as the kernels see it: weight [out, in, 1, 1] (read as [out, in]), bias
// [out] or undefined, sigma [1] on the weight's device or undefined (then 1). The kernels apply
// 1/sigma to W x themselves (a GEMM's alpha, or read from device memory in the epilogue).
struct BlockWeight {
  Tensor weight, bias, sigma;
};

// Indices into the projection arrays: f (queries), g (keys), h (values), o (output, official).
enum BlockSlot { kQuery = 0, kKey = 1, kValue = 2, kOut = 3 };
using BlockWeights = BlockWeight[4];

// What forward keeps for backward, allocated by the forward kernel: q [B, dk, N], k [B, dk, M],
// v [B, dv, M], att [B, dv, N] (the attention core's output), lse [B, N]. The CPU also keeps,
// in the official variant, kfull [B, dk, H, W] and vfull [B, dv, H, W] (the maps before the
// pooling); the CUDA backward recomputes them (see kernels/cuda/attention_block.cu).
// for_backward (set by the op before forward): false in eval / no-grad, where forward may skip
// what only backward reads (the CUDA article variant then never writes att: its epilogue
// y = gamma att + x is applied in the attention kernel's store).
struct BlockSaved {
  Tensor q, k, v, att, lse, kfull, vfull;
  bool for_backward = true;
};

}  // namespace ember
