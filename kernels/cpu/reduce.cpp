// CPU reference for reductions: x viewed as [outer, mid, inner], summed over mid.
#include "kernels/kernels.h"

namespace ember::cpu {

void sum_mid(const Tensor& x, int64_t outer, int64_t mid, int64_t inner, Tensor& y) {
  const float* px = x.data();
  float* py = y.data();
#pragma omp parallel for collapse(2) if (outer * inner > 64)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double s = 0;  // double accumulator: a mean over a million elements stays exact to float
      for (int64_t m = 0; m < mid; ++m) s += px[(o * mid + m) * inner + i];
      py[o * inner + i] = static_cast<float>(s);
    }
}

void broadcast_mid(const Tensor& dy, int64_t outer, int64_t mid, int64_t inner, float scale, Tensor& dx) {
  const float* pdy = dy.data();
  float* pdx = dx.data();
  const int64_t n = outer * mid * inner;
#pragma omp parallel for if (n > 32768)
  for (int64_t k = 0; k < n; ++k) {
    int64_t o = k / (mid * inner), i = k % inner;
    pdx[k] = scale * pdy[o * inner + i];
  }
}

}  // namespace ember::cpu
