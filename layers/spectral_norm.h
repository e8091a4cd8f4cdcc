// Spectral normalisation of a layer's weight, with torch.nn.utils.spectral_norm's semantics and
// names: applying it to a layer renames the parameter "weight" to "weight_orig" and adds the
// buffers "weight_u" [rows] and "weight_v" [cols], initialised to normalised N(0, 1) vectors
// drawn from an ember Generator. The matrix view is along dim 0 for Linear and Conv2d and
// dim 1 for ConvTranspose2d ([in, out, k, k] -> rows = out), as PyTorch chooses.
//
// Each forward in training mode runs one power iteration (u, v updated in place) and computes
// with W / sigma; eval mode uses the stored u, v without updating them. The layers never form
// W / sigma: their consumer ops apply 1/sigma in the bias epilogue (ops::linear_sn, conv2d_sn,
// conv_transpose2d_sn; the attention block in its projections), with the gradients of the composed
// W / sigma. Both run on whatever device the layer lives on. sigma is not part of the state_dict
// (PyTorch does not store it either); it is kept for metrics.
#pragma once
#include <memory>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace ember {

class SpectralNorm {
 public:
  // u [w.size(dim)], v [w.numel() / w.size(dim)] on w's device.
  SpectralNorm(const Tensor& w, int dim, Generator& gen, float eps = 1e-12f);

  // W / sigma (differentiable in W; u, v are constants). Advances u, v first when training.
  Tensor normalize(const Tensor& w, bool training);
  // The same step without forming W / sigma: advances u, v when training and refreshes sigma,
  // for consumers that apply 1/sigma themselves (ops::self_attention_block, ops::linear_sn,
  // conv2d_sn, conv_transpose2d_sn).
  void step(const Tensor& w, bool training);
  // The sigma of the latest step (NaN before the first); copies to the host.
  float last_sigma() const;
  // spectral_norm_step_all has already run this forward's step (u, v, sigma are fresh): the
  // next step() or normalize() uses them instead of stepping again.
  void mark_stepped() { stepped_ = true; }

  int dim;
  float eps;
  Tensor u;      // registered by the owning layer as "weight_u"
  Tensor v;      // registered as "weight_v"
  Tensor sigma;  // [1], written by every step; not a buffer

 private:
  bool stepped_ = false;
};

class Module;
class WeightLayer;
// The spectral-normalised layers under `root`, in traversal order (children in registration order).
std::vector<WeightLayer*> spectral_norm_layers(Module& root);

// One power-iteration step (or, in eval mode, sigma) for every spectral-normalised layer under
// `root` at once (ops::spectral_norm_step_group: two launches for up to 24 weights on CUDA
// instead of two per layer); each layer's next forward uses that step instead of its own. The
// models call it at the top of forward: the step reads only W, u, v, never the activations, so
// taking it early changes nothing (bitwise). Every such layer is stepped, whether the forward then
// runs it or not (in the models every one runs).
void spectral_norm_step_all(Module& root);

}  // namespace ember
