// Linear layer (see linear.h).
#include "layers/linear.h"

#include "core/ops.h"
#include "layers/init.h"

namespace ember {

Linear::Linear(int64_t in, int64_t out, Generator& gen, bool with_bias) : in_features(in), out_features(out) {
  EMBER_CHECK(in > 0 && out > 0, "Linear: sizes must be positive, got in " << in << ", out " << out);
  weight = Tensor::empty(Shape{out, in});
  if (with_bias) bias = Tensor::empty(Shape{out});
  init::torch_default(weight, bias, gen);
  register_weight_and_bias();
}

Tensor Linear::forward(const Tensor& x) {
  if (has_spectral_norm()) return ops::linear_sn(x, weight, bias, spectral_norm_scale());
  return ops::linear(x, weight, bias);
}

}  // namespace ember
