// The attention picture of sagan_celeba: for four query pixels of one generated image, the
// weights of G's attention layer over the image, as heat maps beside the sample.
#pragma once
#include <string>

#include "core/tensor.h"
#include "layers/self_attention.h"

namespace sagan_example {

// Require: attn.keep_input was set before G made `images` [B, C, H, W] (so attn.last_input holds
// the layer's input for that batch); draws the first image. Clears keep_input and last_input.
void write_attention_picture(ember::SelfAttention& attn, const ember::Tensor& images, const std::string& path);

}  // namespace sagan_example
