// ConvTranspose2d: PyTorch's nn.ConvTranspose2d (square kernel, stride, padding, output
// padding; no dilation, groups 1). Weight [in, out, k, k] (PyTorch's layout), bias [out].
// Output size (H - 1) * stride - 2 * pad + k + output_pad. Spectral norm views the weight
// along dim 1, as torch.nn.utils.spectral_norm does for transposed convolutions.
#pragma once
#include "layers/weight_layer.h"

namespace ember {

class ConvTranspose2d : public WeightLayer {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, int kernel, int stride, int pad, Generator& gen,
                  bool with_bias = true, int output_pad = 0);
  Tensor forward(const Tensor& x) override;
  int64_t in_channels, out_channels;
  int kernel, stride, pad, output_pad;

 protected:
  int spectral_norm_dim() const override { return 1; }
};

}  // namespace ember
