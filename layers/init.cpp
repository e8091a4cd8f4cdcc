// Weight initialisers (see init.h).
#include "layers/init.h"

#include <cmath>

#include "core/error.h"

namespace ember::init {

std::pair<int64_t, int64_t> fans(const Tensor& w) {
  EMBER_CHECK(w.dim() >= 2, "init::fans: weight needs rank >= 2, got " << w.shape());
  int64_t receptive = 1;
  for (int d = 2; d < w.dim(); ++d) receptive *= w.size(d);
  return {w.size(1) * receptive, w.size(0) * receptive};
}

void torch_default(Tensor& weight, Tensor& bias, Generator& gen) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(fans(weight).first));
  uniform_(weight, gen, -bound, bound);
  if (bias.defined()) uniform_(bias, gen, -bound, bound);
}

void xavier_uniform(Tensor& w, Generator& gen, float gain) {
  auto f = fans(w);
  const float a = gain * std::sqrt(6.0f / static_cast<float>(f.first + f.second));
  uniform_(w, gen, -a, a);
}

void normal(Tensor& t, Generator& gen, float mean, float std) { normal_(t, gen, mean, std); }

void constant(Tensor& t, float value) { t.fill_(value); }

}  // namespace ember::init
