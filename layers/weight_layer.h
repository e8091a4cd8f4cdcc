// WeightLayer: the common base of Linear, Conv2d and ConvTranspose2d: a weight, an optional
// bias, and optional spectral normalisation of the weight (apply it with spectral_norm(layer)).
//
// Without spectral norm the parameters are "weight" and "bias"; with it, as in PyTorch,
// "bias", "weight_orig" (parameters) and "weight_u", "weight_v" (buffers).
#pragma once
#include <memory>

#include "core/ops.h"
#include "core/rng.h"
#include "layers/module.h"
#include "layers/spectral_norm.h"

namespace ember {

class WeightLayer : public Module {
 public:
  Tensor weight;  // the raw weight ("weight", or "weight_orig" under spectral norm)
  Tensor bias;    // [out] or undefined

  // Under spectral norm, this forward's step (advancing u, v when training, unless
  // spectral_norm_step_all already ran it) and the state the layer's consumer op applies as
  // 1/sigma (ops::linear_sn, conv2d_sn, conv_transpose2d_sn: W / sigma is never formed). Throws
  // if spectral norm is off.
  ops::SnScale spectral_norm_scale();
  // Renames weight -> weight_orig and adds the u, v buffers. Once only.
  void enable_spectral_norm(Generator& gen, float eps = 1e-12f);
  bool has_spectral_norm() const { return sn_ != nullptr; }
  // The spectral-norm state (u, v, latest sigma); throws if spectral norm is off.
  SpectralNorm& spectral_norm_state();

 protected:
  // The dimension spectral norm views as rows: 0 (Linear, Conv2d) or 1 (ConvTranspose2d).
  virtual int spectral_norm_dim() const { return 0; }
  // Registers weight and (if defined) bias under PyTorch's names, in PyTorch's order.
  void register_weight_and_bias();

 private:
  std::unique_ptr<SpectralNorm> sn_;
};

// Applies spectral normalisation to a layer and returns it (torch.nn.utils.spectral_norm).
template <class L>
std::shared_ptr<L> spectral_norm(std::shared_ptr<L> layer, Generator& gen, float eps = 1e-12f) {
  layer->enable_spectral_norm(gen, eps);
  return layer;
}

}  // namespace ember
