// Linear: y = x W^T + b, x [N, in], W [out, in], b [out] (PyTorch's nn.Linear, default init).
#pragma once
#include "layers/weight_layer.h"

namespace ember {

class Linear : public WeightLayer {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& gen, bool with_bias = true);
  Tensor forward(const Tensor& x) override;
  int64_t in_features, out_features;
};

}  // namespace ember
