// Parameter-free layers (see stateless.h).
#include "layers/stateless.h"

#include "core/ops.h"

namespace ember {

Tensor ReLU::forward(const Tensor& x) { return ops::relu(x); }
Tensor LeakyReLU::forward(const Tensor& x) { return ops::leaky_relu(x, slope); }
Tensor Tanh::forward(const Tensor& x) { return ops::tanh(x); }
Tensor AvgPool2x2::forward(const Tensor& x) { return ops::avg_pool2x2(x); }
Tensor MaxPool2x2::forward(const Tensor& x) { return ops::max_pool2x2(x); }
Tensor Upsample2x::forward(const Tensor& x) { return ops::upsample2x(x); }

}  // namespace ember
