// WeightLayer: weight, bias and optional spectral normalisation (see weight_layer.h).
#include "layers/weight_layer.h"

#include "core/error.h"

namespace ember {

void WeightLayer::register_weight_and_bias() {
  register_parameter("weight", &weight);
  if (bias.defined()) register_parameter("bias", &bias);
}

void WeightLayer::enable_spectral_norm(Generator& gen, float eps) {
  EMBER_CHECK(!sn_, "spectral_norm: already applied to this layer (weight " << weight.shape() << ")");
  sn_ = std::make_unique<SpectralNorm>(weight, spectral_norm_dim(), gen, eps);
  // PyTorch deletes "weight" and registers "weight_orig" after the others, then u and v.
  rename_parameter("weight", "weight_orig", &weight);
  register_buffer("weight_u", &sn_->u);
  register_buffer("weight_v", &sn_->v);
}

ops::SnScale WeightLayer::spectral_norm_scale() {
  SpectralNorm& sn = spectral_norm_state();
  sn.step(weight, is_training());
  return ops::SnScale{sn.dim, sn.u, sn.v, sn.sigma};
}

SpectralNorm& WeightLayer::spectral_norm_state() {
  EMBER_CHECK(sn_, "spectral_norm_state: this layer (weight " << weight.shape() << ") has no spectral norm");
  return *sn_;
}

}  // namespace ember
