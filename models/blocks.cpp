// Shared model blocks and initialisers (see blocks.h).
#include "models/blocks.h"

#include <cmath>

#include "core/ops.h"
#include "layers/init.h"
#include "layers/weight_layer.h"

namespace ember::models {

int stages_for(int resolution, const char* what) {
  EMBER_CHECK(resolution == 32 || resolution == 64 || resolution == 128,
              what << ": resolution must be 32, 64 or 128, got " << resolution);
  int n = 0;
  for (int r = resolution; r > 4; r /= 2) ++n;
  return n;
}

int64_t scaled(int64_t base, float width) {
  EMBER_CHECK(width > 0, "model width multiplier must be positive, got " << width);
  return std::max<int64_t>(1, std::llround(static_cast<double>(base) * width));
}

UpStage::UpStage(std::shared_ptr<ConvTranspose2d> c, int64_t channels) {
  conv = register_module("conv", std::move(c));
  bn = register_module("bn", std::make_shared<BatchNorm2d>(channels));
}

Tensor UpStage::forward(const Tensor& x) { return ops::relu((*bn)((*conv)(x))); }

DownStage::DownStage(std::shared_ptr<Conv2d> c, bool batch_norm, float s) : slope(s) {
  conv = register_module("conv", std::move(c));
  if (batch_norm) bn = register_module("bn", std::make_shared<BatchNorm2d>(conv->out_channels));
}

Tensor DownStage::forward(const Tensor& x) {
  Tensor y = (*conv)(x);
  if (bn) y = (*bn)(y);
  return ops::leaky_relu(y, slope);
}

namespace {
// Visits every module of the tree (pre-order).
template <class F>
void visit(Module& m, F&& f) {
  f(m);
  for (auto& c : m.named_children()) visit(*c.second, f);
}
}  // namespace

void init_xavier(Module& root, Generator& gen) {
  visit(root, [&](Module& m) {
    if (auto* w = dynamic_cast<WeightLayer*>(&m)) {
      init::xavier_uniform(w->weight, gen);
      if (w->bias.defined()) init::constant(w->bias, 0.0f);
    }
  });
}

void init_dcgan(Module& root, Generator& gen) {
  visit(root, [&](Module& m) {
    if (auto* w = dynamic_cast<WeightLayer*>(&m)) {
      init::normal(w->weight, gen, 0.0f, 0.02f);
      if (w->bias.defined()) init::constant(w->bias, 0.0f);
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) {
      init::normal(bn->weight, gen, 1.0f, 0.02f);
      init::constant(bn->bias, 0.0f);
    }
  });
}

}  // namespace ember::models
