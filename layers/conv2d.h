// Conv2d: square kernel, stride and padding, no dilation, groups 1 (PyTorch's nn.Conv2d and its
// default init). Weight [out, in, k, k], bias [out].
#pragma once
#include "layers/weight_layer.h"

namespace ember {

class Conv2d : public WeightLayer {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int kernel, int stride, int pad, Generator& gen,
         bool with_bias = true);
  Tensor forward(const Tensor& x) override;
  int64_t in_channels, out_channels;
  int kernel, stride, pad;
};

}  // namespace ember
