// SelfAttention: the SAGAN block over a feature map x [B, C, H, W], N = H*W:
//   f = Wf x (C -> C/8, the queries), g = Wg x (C -> C/8, the keys), h = Wh x (C -> Cv, the values),
//   beta_i = softmax_j(f_i . g_j),  o_i = sum_j beta_ij h_j,  y = gamma * o + x, gamma init 0.
// All projections are 1x1 convolutions with spectral norm on every weight. forward runs the whole
// block as one op, ops::self_attention_block (1/sigma applied inside the projections);
// attention_map runs the composed f, g convolutions.
//
// Two variants, chosen at construction:
//   Article  (T. Silva's article code): Cv = C, keys and values at full resolution (M = N), no
//            output projection; f and h have biases (Keras Conv2D's default there), g does not:
//            a key bias adds f_i . b to every score of query i, which the softmax cancels, so
//            its gradient is exactly 0 (a dead parameter that Adam would move by rounding noise).
//   Official (Zhang et al.'s released code, sn_non_local_block_sim): g and h max-pooled 2x2
//            (M = N/4), Cv = C/2, then an output 1x1 convolution "o" C/2 -> C before gamma;
//            no biases (sn_conv1x1 has none).
// State dict names: f.*, g.*, h.*, (o.*), gamma [1] — the same in the PyTorch mirror.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/conv2d.h"
#include "layers/module.h"

namespace ember {

enum class AttentionVariant { Article, Official };
const char* attention_variant_name(AttentionVariant v);
AttentionVariant parse_attention_variant(const std::string& s);  // "article" | "official"

class SelfAttention : public Module {
 public:
  // channels must be a multiple of 8 (and at least 8).
  SelfAttention(int64_t channels, AttentionVariant variant, Generator& gen);
  Tensor forward(const Tensor& x) override;

  // Attention weights of chosen query pixels (flat indices i = row * W + col), [B, nq, M] with
  // M = N (Article) or N/4 (Official; keys on the pooled (H/2, W/2) grid). No autograd; does
  // not advance spectral norm (evaluated with the stored u, v).
  Tensor attention_map(const Tensor& x, const std::vector<int64_t>& query_positions);

  // For attention pictures: while keep_input is set, forward keeps its input (detached) in
  // last_input, so a caller can ask attention_map about the feature map G actually produced.
  bool keep_input = false;
  Tensor last_input;

  int64_t channels, key_channels, value_channels;
  AttentionVariant variant;
  std::shared_ptr<Conv2d> f, g, h, o;  // o only for Official
  Tensor gamma;                        // [1]

 private:
  Tensor queries(const Tensor& x);
  Tensor keys(const Tensor& x);
};

}  // namespace ember
