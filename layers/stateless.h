// Parameter-free layers as thin modules over ops::, for composing models: activations,
// pooling and nearest-neighbour upsampling. They have no state and appear in no state_dict.
#pragma once
#include "layers/module.h"

namespace ember {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(float slope = 0.01f) : slope(slope) {}
  Tensor forward(const Tensor& x) override;
  float slope;
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class AvgPool2x2 : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class MaxPool2x2 : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Upsample2x : public Module {  // nearest
 public:
  Tensor forward(const Tensor& x) override;
};

}  // namespace ember
