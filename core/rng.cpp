#include "core/rng.h"

#include "core/dispatch.h"
#include "core/philox.h"
#include "kernels/kernels.h"

namespace ember {

uint64_t Generator::next_u64() {
  philox::U4 b = philox::block(seed_, advance(4));
  return (static_cast<uint64_t>(b.x) << 32) | b.y;
}

void normal_(Tensor& t, Generator& gen, float mean, float std) {
  uint64_t off = gen.advance(t.numel());
  EMBER_DISPATCH("normal_", t.device(), fill_normal, t, gen.seed(), off, mean, std);
}

void uniform_(Tensor& t, Generator& gen, float lo, float hi) {
  uint64_t off = gen.advance(t.numel());
  EMBER_DISPATCH("uniform_", t.device(), fill_uniform, t, gen.seed(), off, lo, hi);
}

Tensor randn(const Shape& shape, Generator& gen, Device device, float mean, float std) {
  Tensor t = Tensor::empty(shape, device);
  normal_(t, gen, mean, std);
  return t;
}

Tensor rand_uniform(const Shape& shape, Generator& gen, Device device, float lo, float hi) {
  Tensor t = Tensor::empty(shape, device);
  uniform_(t, gen, lo, hi);
  return t;
}

}  // namespace ember
