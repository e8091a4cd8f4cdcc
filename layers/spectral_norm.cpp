// Spectral normalisation state and step (see spectral_norm.h).
#include "layers/spectral_norm.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/ops.h"
#include "layers/weight_layer.h"

namespace ember {

namespace {
// normalize(N(0,1) sample) as PyTorch's F.normalize(..., eps): computed on the host once.
Tensor random_unit(int64_t n, Generator& gen, float eps, Device device) {
  std::vector<float> a = randn(Shape{n}, gen).to_vector();
  double ss = 0;
  for (float x : a) ss += static_cast<double>(x) * x;
  const double norm = std::max(std::sqrt(ss), static_cast<double>(eps));
  for (float& x : a) x = static_cast<float>(x / norm);
  return Tensor::from_vector(a, Shape{n}, device);
}
}  // namespace

SpectralNorm::SpectralNorm(const Tensor& w, int dim_, Generator& gen, float eps_) : dim(dim_), eps(eps_) {
  EMBER_CHECK(w.defined() && w.dim() >= 2 && dim_ >= 0 && dim_ < w.dim(),
              "spectral_norm: weight of rank >= 2 and dim in range expected, got weight "
                  << (w.defined() ? w.shape().str() : "undefined") << " and dim " << dim_);
  const int64_t rows = w.size(dim_);
  u = random_unit(rows, gen, eps, w.device());
  v = random_unit(w.numel() / rows, gen, eps, w.device());
  sigma = Tensor::full(Shape{1}, std::numeric_limits<float>::quiet_NaN(), w.device());
}

Tensor SpectralNorm::normalize(const Tensor& w, bool training) {
  step(w, training);
  return ops::spectral_normalized(w, dim, u, v, sigma);
}

void SpectralNorm::step(const Tensor& w, bool training) {
  if (stepped_) {
    stepped_ = false;
    return;
  }
  if (sigma.device() != w.device()) sigma = sigma.to(w.device());
  ops::spectral_norm_step(w, dim, u, v, sigma, training, eps);
}

float SpectralNorm::last_sigma() const { return sigma.item(); }

namespace {
void collect(Module& m, std::vector<WeightLayer*>& out) {
  if (auto* l = dynamic_cast<WeightLayer*>(&m); l && l->has_spectral_norm()) out.push_back(l);
  for (auto& [name, child] : m.named_children()) collect(*child, out);
}
}  // namespace

std::vector<WeightLayer*> spectral_norm_layers(Module& root) {
  std::vector<WeightLayer*> out;
  collect(root, out);
  return out;
}

void spectral_norm_step_all(Module& root) {
  const std::vector<WeightLayer*> layers = spectral_norm_layers(root);
  for (bool training : {true, false}) {  // normally one mode for the whole model
    std::vector<SnStepItem> items;
    std::vector<SpectralNorm*> owners;
    for (WeightLayer* l : layers) {
      if (l->is_training() != training) continue;
      SpectralNorm& sn = l->spectral_norm_state();
      if (sn.sigma.device() != l->weight.device()) sn.sigma = sn.sigma.to(l->weight.device());
      items.push_back({l->weight, sn.dim, sn.eps, sn.u, sn.v, sn.sigma});
      owners.push_back(&sn);
    }
    ops::spectral_norm_step_group(items, training);
    for (SpectralNorm* sn : owners) sn->mark_stepped();
  }
}

}  // namespace ember
