// The double-precision reference of the attention core: the same contract as cpu::attention_forward
// and cpu::attention_backward (kernels/attention.inc), computed one row at a time with double
// accumulators. Slow; the oracle of the tests, never on the training path.
#pragma once
#include "core/tensor.h"

namespace ember::cpu::reference {

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o, Tensor& lse);
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                        const Tensor& d_o, Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace ember::cpu::reference
