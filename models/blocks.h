// Building blocks shared by the models, and the small helpers they use to size themselves.
// Each block is a Module whose state_dict names match the PyTorch mirror in
// tests/parity/ember_models.py.
#pragma once
#include <cstdint>
#include <memory>

#include "layers/batch_norm2d.h"
#include "layers/conv2d.h"
#include "layers/conv_transpose2d.h"
#include "layers/module.h"

namespace ember::models {

// log2(resolution / 4): the number of 2x stages between 4x4 and the image. Checks that
// resolution is one of 32, 64, 128 ("what": the model, for the message).
int stages_for(int resolution, const char* what);
// round(base * width), at least 1.
int64_t scaled(int64_t base, float width);

// ConvTranspose2d -> BatchNorm2d -> ReLU. Names: conv.*, bn.*.
class UpStage : public Module {
 public:
  UpStage(std::shared_ptr<ConvTranspose2d> conv, int64_t channels);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<ConvTranspose2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
};

// Conv2d -> (BatchNorm2d) -> LeakyReLU(slope). Names: conv.*, (bn.*).
class DownStage : public Module {
 public:
  DownStage(std::shared_ptr<Conv2d> conv, bool batch_norm, float slope);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;  // null without batch norm
  float slope;
};

// Re-initialisers applied to every weight layer / BatchNorm in a module tree.
// Xavier uniform (gain 1) on every Linear/Conv/ConvTranspose weight, biases 0 (official SAGAN).
void init_xavier(Module& m, Generator& gen);
// DCGAN's: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02) and bias 0, other biases 0.
void init_dcgan(Module& m, Generator& gen);

}  // namespace ember::models
