// The fused attention kernels with an explicit variant, for tests and benchmarks (plain C++:
// .cpp files include it). The dispatch entries cuda::attention_forward / attention_backward
// (kernels/attention.inc) use attention_default_variant(). Defined in kernels/cuda/attention.cu,
// so only in the CUDA build.
#pragma once
#include "core/tensor.h"

namespace ember::cuda {

// How the matrix products inside the fused kernels are computed (accumulation is fp32 in all):
enum class AttentionVariant {
  Simt = 0,    // fp32 FMA on the CUDA cores: the plain, exact-fp32 version
  Tf32 = 1,    // tensor cores: scores q.k in 3xTF32 (their error is exponentiated), the products
               // with P, dS and the value/gradient tensors in one TF32 pass (~3e-4 relative error)
  Tf32x3 = 2,  // tensor cores, every product in 3xTF32 (split hi + lo): fp32-class accuracy
};
const char* attention_variant_name(AttentionVariant v);
// Tf32 when context().allow_tf32, Tf32x3 otherwise; Simt on GPUs without TF32 (before sm_80).
AttentionVariant attention_default_variant();

void attention_forward_variant(AttentionVariant variant, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                               Tensor& lse);
void attention_backward_variant(AttentionVariant variant, const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& o, const Tensor& lse, const Tensor& d_o, Tensor& dq, Tensor& dk,
                                Tensor& dv);

}  // namespace ember::cuda
