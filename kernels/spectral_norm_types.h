// The argument type of the grouped spectral-norm step (kernels/spectral_norm.inc), shared by
// both backends.
#pragma once
#include "core/tensor.h"

namespace ember {

// One spectral-normalised weight of a model: w viewed along dim (kernels/spectral_norm_layout.h),
// its buffers u [rows], v [cols] and sigma [1], all on one device, updated in place.
struct SnStepItem {
  Tensor w;
  int dim = 0;
  float eps = 1e-12f;
  Tensor u, v, sigma;
};

}  // namespace ember
