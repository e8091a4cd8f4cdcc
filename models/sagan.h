// SAGAN as T. Silva's article describes it (the default model; 128x128 RGB, z in R^128).
//
// Generator (resolution 128, width 1):
//   z [B,128] -> SN-Linear 128 -> 4*4*512 -> reshape [B,512,4,4] -> BatchNorm -> ReLU
//   -> SN-ConvT k4 s2 p1 512->256 (8x8) -> 256->128 (16x16) -> 128->64 (32x32), each BN + ReLU
//   -> SelfAttention(64) at 32x32
//   -> SN-ConvT 64->32 (64x64) -> 32->16 (128x128), each BN + ReLU
//   -> SN-Conv 3x3 p1 16->3 -> tanh                                      image [B,3,128,128]
// Discriminator:
//   x [B,3,128,128] -> SN-Conv k4 s2 p1 3->32 (64x64) -> 32->64 (32x32), each LeakyReLU(0.1)
//   -> SelfAttention(64) at 32x32
//   -> SN-Conv 64->128 (16) -> 128->256 (8) -> 256->512 (4x4), each LeakyReLU(0.1)
//   -> flatten -> SN-Linear 8192 -> 1                                     one unscaled logit [B,1]
// Spectral norm on every weight, including the attention projections and both linear layers.
//
// Options: `width` multiplies every channel count (rounded, at least 1; the attention
// channels must stay a multiple of 8); resolution 64 or 32 drops the last up stage / first down
// stage once or twice, keeping the channel count at each resolution (attention stays at 32x32,
// or at 16x16 for the 32x32 model); the attention variant; 1 or 3 image channels; z_dim.
// Initialisation: PyTorch's defaults (Linear/Conv: kaiming-uniform a = sqrt(5), i.e.
// U(+-1/sqrt(fan_in)), bias U(+-1/sqrt(fan_in)); BatchNorm weight 1, bias 0; gamma 0), drawn
// from the Generator given; spectral-norm u, v normalised N(0,1) from the same Generator.
// Biases: every layer has one except those feeding a BatchNorm (G's fc and transposed
// convolutions), whose bias the mean subtraction cancels exactly (a dead parameter that Adam
// would still move by rounding noise; DCGAN omits them for the same reason).
//
// State dict names (= tests/parity/ember_models.py): G: fc.*, bn0.*, ups.<i>.conv.*,
// ups.<i>.bn.*, attn.*, out.*;  D: downs.<i>.*, attn.*, fc.*.
#pragma once
#include <memory>
#include <string>

#include "core/rng.h"
#include "layers/batch_norm2d.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/self_attention.h"
#include "models/blocks.h"

namespace ember::models {

struct SaganConfig {
  int resolution = 128;  // 128, 64 or 32
  float width = 1.0f;    // channel multiplier
  int64_t z_dim = 128;
  int64_t image_channels = 3;  // 1 or 3
  AttentionVariant attention = AttentionVariant::Article;
  float d_slope = 0.1f;  // LeakyReLU slope in D

  int attention_resolution() const { return resolution == 32 ? 16 : 32; }
  std::string to_json() const;
  static SaganConfig from_json(const std::string& json);
};

class SaganGenerator : public Module {
 public:
  SaganGenerator(const SaganConfig& cfg, Generator& gen);
  Tensor forward(const Tensor& z) override;  // z [B, z_dim] -> image [B, C, R, R] in [-1, 1]
  SaganConfig cfg;
  std::shared_ptr<Linear> fc;
  std::shared_ptr<BatchNorm2d> bn0;
  std::shared_ptr<ModuleList> ups;  // UpStage
  std::shared_ptr<SelfAttention> attn;
  std::shared_ptr<Conv2d> out;
  int attn_after;  // attention runs after ups[attn_after]
  int64_t c0;      // channels at 4x4
};

class SaganDiscriminator : public Module {
 public:
  SaganDiscriminator(const SaganConfig& cfg, Generator& gen);
  Tensor forward(const Tensor& x) override;  // image [B, C, R, R] -> logit [B, 1]
  SaganConfig cfg;
  std::shared_ptr<ModuleList> downs;  // Conv2d, each followed by LeakyReLU
  std::shared_ptr<SelfAttention> attn;
  std::shared_ptr<Linear> fc;
  int attn_after;  // attention runs after downs[attn_after]
};

}  // namespace ember::models
