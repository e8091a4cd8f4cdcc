// Builds the generator and discriminator a TrainConfig names, and finds the layers whose
// state the metrics report (attention gammas, spectral-norm sigmas) and that draw the
// attention-map pictures.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "examples/sagan_celeba/config.h"
#include "layers/module.h"
#include "layers/self_attention.h"
#include "layers/weight_layer.h"

namespace sagan_example {

struct Gan {
  std::shared_ptr<ember::Module> G, D;
  int64_t z_dim = 128;
  // Layers found in G then D, with their dotted names ("G.attn", "D.downs.0").
  std::vector<std::pair<std::string, ember::SelfAttention*>> attention;
  std::vector<std::pair<std::string, ember::WeightLayer*>> spectral;
  bool hinge = true;  // SAGAN forms: hinge loss; DCGAN: non-saturating BCE
};

// Weights come from `gen` (Philox: the same on CPU and CUDA), then move to `device`.
Gan build_gan(const TrainConfig& cfg, ember::Generator& gen, ember::Device device);

}  // namespace sagan_example
