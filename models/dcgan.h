// DCGAN (Radford et al.), the baseline the reference article starts from; no spectral norm, no
// attention, trained with the non-saturating loss. Layout as PyTorch's DCGAN example.
//
// Generator (resolution 64, base 64):
//   z [B,128] -> [B,128,1,1] -> ConvT k4 s1 p0 z->8b (4x4) -> ConvT k4 s2 p1 8b->4b (8) -> 4b->2b (16)
//   -> 2b->b (32), each BatchNorm + ReLU -> ConvT k4 s2 p1 b->C (64) -> tanh
// Discriminator:
//   x -> Conv k4 s2 p1 C->b (32) LeakyReLU(0.2) -> b->2b (16) -> 2b->4b (8) -> 4b->8b (4), each
//   BatchNorm + LeakyReLU(0.2) -> Conv k4 s1 p0 8b->1 -> logit [B,1]
// Resolution 32 / 128: one 2x stage fewer / more (channels at 4x4: b * 2^(stages-1)).
// No biases (BatchNorm follows nearly every convolution), as in the PyTorch example.
// Initialisation: DCGAN's: conv weights N(0, 0.02); BatchNorm weight N(1, 0.02), bias 0.
//
// State dict names: G: ups.<i>.conv.*, ups.<i>.bn.*, out.*;  D: downs.<i>.conv.*, downs.<i>.bn.*, out.*.
#pragma once
#include <memory>
#include <string>

#include "core/rng.h"
#include "layers/conv2d.h"
#include "layers/conv_transpose2d.h"
#include "models/blocks.h"

namespace ember::models {

struct DcganConfig {
  int resolution = 64;  // 32, 64 or 128
  int64_t base = 64;    // ngf = ndf
  int64_t z_dim = 128;
  int64_t image_channels = 3;
  float d_slope = 0.2f;

  std::string to_json() const;
  static DcganConfig from_json(const std::string& json);
};

class DcganGenerator : public Module {
 public:
  DcganGenerator(const DcganConfig& cfg, Generator& gen);
  Tensor forward(const Tensor& z) override;  // [B, z_dim] -> [B, C, R, R]
  DcganConfig cfg;
  std::shared_ptr<ModuleList> ups;  // UpStage
  std::shared_ptr<ConvTranspose2d> out;
};

class DcganDiscriminator : public Module {
 public:
  DcganDiscriminator(const DcganConfig& cfg, Generator& gen);
  Tensor forward(const Tensor& x) override;  // [B, C, R, R] -> [B, 1]
  DcganConfig cfg;
  std::shared_ptr<ModuleList> downs;  // DownStage
  std::shared_ptr<Conv2d> out;
};

}  // namespace ember::models
