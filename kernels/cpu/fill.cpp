// CPU reference for the fill family: constants and Philox random numbers (core/philox.h).
#include "core/philox.h"
#include "kernels/kernels.h"

namespace ember::cpu {

void fill(Tensor& y, float value) {
  float* p = y.data();
  const int64_t n = y.numel();
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

void fill_uniform(Tensor& y, uint64_t seed, uint64_t offset, float lo, float hi) {
  float* p = y.data();
  const int64_t n = y.numel();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] = lo + (hi - lo) * philox::uniform(seed, offset, static_cast<uint64_t>(i));
}

void fill_normal(Tensor& y, uint64_t seed, uint64_t offset, float mean, float std) {
  float* p = y.data();
  const int64_t n = y.numel();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] = mean + std * philox::normal(seed, offset, static_cast<uint64_t>(i));
}

}  // namespace ember::cpu
