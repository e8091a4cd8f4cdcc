// Conv2d layer (see conv2d.h).
#include "layers/conv2d.h"

#include "core/ops.h"
#include "layers/init.h"

namespace ember {

Conv2d::Conv2d(int64_t in, int64_t out, int k, int s, int p, Generator& gen, bool with_bias)
    : in_channels(in), out_channels(out), kernel(k), stride(s), pad(p) {
  EMBER_CHECK(in > 0 && out > 0 && k > 0 && s > 0 && p >= 0,
              "Conv2d: bad configuration in " << in << ", out " << out << ", kernel " << k << ", stride " << s
                                              << ", pad " << p);
  weight = Tensor::empty(Shape{out, in, k, k});
  if (with_bias) bias = Tensor::empty(Shape{out});
  init::torch_default(weight, bias, gen);
  register_weight_and_bias();
}

Tensor Conv2d::forward(const Tensor& x) {
  if (has_spectral_norm()) return ops::conv2d_sn(x, weight, bias, stride, pad, spectral_norm_scale());
  return ops::conv2d(x, weight, bias, stride, pad);
}

}  // namespace ember
