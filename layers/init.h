// Weight initialisers, written as PyTorch's torch.nn.init computes them, drawing from an ember
// Generator (Philox), so a model built from one seed has the same weights on CPU and CUDA.
// They write in place and record no autograd.
//
// fan_in / fan_out follow PyTorch's _calculate_fan_in_and_fan_out: for a weight of shape
// [d0, d1, k...], fan_in = d1 * prod(k), fan_out = d0 * prod(k). (So for ConvTranspose2d,
// whose weight is [in, out, k, k], "fan_in" is out*k*k: PyTorch's quirk, kept on purpose.)
#pragma once
#include <utility>

#include "core/rng.h"
#include "core/tensor.h"

namespace ember::init {

std::pair<int64_t, int64_t> fans(const Tensor& w);  // (fan_in, fan_out)

// PyTorch's default for Linear / Conv*d: kaiming_uniform_(a = sqrt(5)) on the weight, i.e.
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the
// weight's fan_in. `bias` may be undefined.
void torch_default(Tensor& weight, Tensor& bias, Generator& gen);
// U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform(Tensor& w, Generator& gen, float gain = 1.0f);
void normal(Tensor& t, Generator& gen, float mean, float std);
void constant(Tensor& t, float value);

}  // namespace ember::init
