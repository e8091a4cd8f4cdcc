// The fused attention kernels with an explicit variant, for tests and benchmarks (plain C++:
// .cpp files include it). The dispatch entries cuda::attention_forward / attention_backward
// (kernels/attention.inc) use attention_default_variant(). Defined in kernels/cuda/attention.cu,
// so only in the CUDA build.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#ifndef EMBER_KERNELS_ONLY
#include "core/tensor.h"
#endif

namespace ember::cuda {

// How the matrix products inside the fused kernels are computed (accumulation is fp32 in all):
enum class AttentionVariant {
  Simt = 0,    // fp32 FMA on the CUDA cores: the plain, exact-fp32 version
  Tf32 = 1,    // tensor cores: scores q.k in 3xTF32 (their error is exponentiated), the products
               // with P, dS and the value/gradient tensors in one TF32 pass (~3e-4 relative error)
  Tf32x3 = 2,  // tensor cores, every product in 3xTF32 (split hi + lo): fp32-class accuracy
};
const char* attention_variant_name(AttentionVariant v);

// The SAGAN block's epilogue, applied by the forward as it stores each output tile (the article
// variant of kernels/cuda/attention_block.cu): y = *gamma o + residual, so that o need not go to
// memory and be read back by a separate gamma-residual kernel. All null: no epilogue.
struct AttentionEpilogue {
  const float* gamma = nullptr;     // [1], device
  const float* residual = nullptr;  // [B, dv, N]
  float* y = nullptr;               // [B, dv, N]; may not alias o or the residual
};

// The forward on raw device pointers and a stream (what the Tensor entries below and the kernel
// lab call): q [B, dk, N], k [B, dk, M], v [B, dv, M] -> o [B, dv, N], lse [B, N]. With an
// epilogue, o may be null (nothing but y and lse is written: eval, where backward needs no o).
void attention_forward_launch(AttentionVariant variant, const float* q, const float* k, const float* v, float* o,
                              float* lse, int64_t B, int64_t N, int64_t M, int64_t dk, int64_t dv, cudaStream_t stream,
                              const AttentionEpilogue& epilogue = {});

#ifndef EMBER_KERNELS_ONLY
// Tf32 when context().allow_tf32, Tf32x3 otherwise; Simt on GPUs without TF32 (before sm_80).
AttentionVariant attention_default_variant();

void attention_forward_variant(AttentionVariant variant, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                               Tensor& lse);
// The forward with the block's epilogue: y = gamma o + residual (gamma [1], residual and y
// [B, dv, N] or any shape of that many elements, on the device); o [B, dv, N] is written too
// when defined (training), not at all when undefined (eval).
void attention_forward_residual(AttentionVariant variant, const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& gamma, const Tensor& residual, Tensor& o, Tensor& y, Tensor& lse);
void attention_backward_variant(AttentionVariant variant, const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& o, const Tensor& lse, const Tensor& d_o, Tensor& dq, Tensor& dk,
                                Tensor& dv);

#endif  // EMBER_KERNELS_ONLY

}  // namespace ember::cuda
