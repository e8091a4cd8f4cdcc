// SAGAN in the official form (Zhang et al.'s released code, unconditional): residual blocks.
//
// Up-block (in -> out):   h = conv2(relu(bn2(conv1(up(relu(bn1(x)))))));  s = shortcut(up(x));  h + s
//   conv1, conv2: SN-Conv 3x3 p1; shortcut: SN-Conv 1x1; up: nearest x2.
// Down-block (in -> out): h = conv2(relu(conv1(relu(x)))), then avgpool 2x2 if downsampling;
//   s = shortcut(x) then avgpool (shortcut present when downsampling or in != out, else s = x).
//   The first D block ("optimized_block" in the official code) takes the image directly:
//   h = avgpool(conv2(relu(conv1(x))));  s = shortcut(avgpool(x)).
// Generator (resolution 128, base ch = 64):
//   z -> SN-Linear z -> 4*4*16ch -> [B,16ch,4,4] -> up 16ch->16ch (8) -> 16->8 (16) -> 8->4 (32)
//   -> SelfAttention(4ch) at 32x32 -> up 4->2 (64) -> 2->1 (128) -> BN -> ReLU -> SN-Conv3x3 ch->C -> tanh
// Discriminator:
//   x -> down* C->ch (64) -> down ch->2ch (32) -> SelfAttention(2ch) at 32x32 -> 2->4 (16) -> 4->8 (8)
//   -> 8->16 (4) -> block 16->16 without downsampling -> ReLU -> sum over H, W -> SN-Linear 16ch -> 1
// Resolution 64 / 32: the first G block and the last D downsampling block are dropped once /
// twice (channels at each resolution kept); attention at 32x32, or 16x16 for the 32x32 model.
// Spectral norm on every weight (also in G, as the paper does). BatchNorm is unconditional here.
// Initialisation: Xavier uniform (gain 1) on every weight, biases 0, as the official code
// (tf.contrib.layers.xavier_initializer, zero biases); BN weight 1, bias 0; gamma 0.
// The attention variant defaults to the official one (max-pooled keys/values, output conv).
//
// State dict names: G: fc.*, blocks.<i>.{bn1,conv1,bn2,conv2,shortcut}.*, attn.*, bn.*, out.*;
// D: blocks.<i>.{conv1,conv2,shortcut}.*, attn.*, fc.*.
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

struct SaganResNetConfig {
  int resolution = 128;  // 128, 64 or 32
  int64_t base = 64;     // channel base ("ch" / gf_dim / df_dim)
  int64_t z_dim = 128;
  int64_t image_channels = 3;
  AttentionVariant attention = AttentionVariant::Official;

  int attention_resolution() const { return resolution == 32 ? 16 : 32; }
  std::string to_json() const;
  static SaganResNetConfig from_json(const std::string& json);
};

class ResBlockUp : public Module {
 public:
  ResBlockUp(int64_t in, int64_t out, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Conv2d> conv1, conv2, shortcut;
};

class ResBlockDown : public Module {
 public:
  // first: the official "optimized" first block (no activation before conv1, pool before shortcut).
  ResBlockDown(int64_t in, int64_t out, bool downsample, bool first, Generator& gen);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<Conv2d> conv1, conv2, shortcut;  // shortcut null when it is the identity
  bool downsample, first;
};

class SaganResNetGenerator : public Module {
 public:
  SaganResNetGenerator(const SaganResNetConfig& cfg, Generator& gen);
  Tensor forward(const Tensor& z) override;
  SaganResNetConfig cfg;
  std::shared_ptr<Linear> fc;
  std::shared_ptr<ModuleList> blocks;  // ResBlockUp
  std::shared_ptr<SelfAttention> attn;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<Conv2d> out;
  int attn_after;
  int64_t c0;
};

class SaganResNetDiscriminator : public Module {
 public:
  SaganResNetDiscriminator(const SaganResNetConfig& cfg, Generator& gen);
  Tensor forward(const Tensor& x) override;
  SaganResNetConfig cfg;
  std::shared_ptr<ModuleList> blocks;  // ResBlockDown
  std::shared_ptr<SelfAttention> attn;
  std::shared_ptr<Linear> fc;
  int attn_after;
};

}  // namespace ember::models
