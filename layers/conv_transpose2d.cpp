// ConvTranspose2d layer (see conv_transpose2d.h).
#include "layers/conv_transpose2d.h"

#include "core/ops.h"
#include "layers/init.h"

namespace ember {

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, int k, int s, int p, Generator& gen, bool with_bias,
                                 int op)
    : in_channels(in), out_channels(out), kernel(k), stride(s), pad(p), output_pad(op) {
  EMBER_CHECK(in > 0 && out > 0 && k > 0 && s > 0 && p >= 0 && op >= 0 && op < s,
              "ConvTranspose2d: bad configuration in " << in << ", out " << out << ", kernel " << k << ", stride "
                                                       << s << ", pad " << p << ", output_pad " << op);
  weight = Tensor::empty(Shape{in, out, k, k});
  if (with_bias) bias = Tensor::empty(Shape{out});
  init::torch_default(weight, bias, gen);  // fan_in = out*k*k, as PyTorch computes it for this layout
  register_weight_and_bias();
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  if (has_spectral_norm())
    return ops::conv_transpose2d_sn(x, weight, bias, stride, pad, output_pad, spectral_norm_scale());
  return ops::conv_transpose2d(x, weight, bias, stride, pad, output_pad);
}

}  // namespace ember
