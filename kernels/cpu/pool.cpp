// CPU reference for 2x2 pooling (stride 2) and nearest-neighbour 2x upsampling on NCHW.
// Every function runs over planes: [N*C, H, W] on the input side, [N*C, H/2, W/2] (pooling) or
// [N*C, 2H, 2W] (upsampling) on the other. Window order is (0,0), (0,1), (1,0), (1,1).
#include <cmath>

#include "kernels/kernels.h"

namespace ember::cpu {

namespace {

// Large side of the op: [planes, H, W] with H and W even; small side [planes, H/2, W/2].
struct Planes {
  int64_t planes, H, W;  // the large side
  explicit Planes(const Tensor& big) : planes(big.size(0) * big.size(1)), H(big.size(2)), W(big.size(3)) {}
  int64_t Hs() const { return H / 2; }
  int64_t Ws() const { return W / 2; }
  int64_t small_numel() const { return planes * Hs() * Ws(); }
  // Index in the large tensor of tap t (0..3) of the window under small-side element s.
  int64_t tap(int64_t s, int t) const {
    const int64_t p = s / (Hs() * Ws()), i = (s / Ws()) % Hs(), j = s % Ws();
    return (p * H + 2 * i + t / 2) * W + 2 * j + t % 2;
  }
};

// Calls f(s) for each small-side element s, in parallel when large.
template <class F>
void for_each_small(const Planes& g, F f) {
  const int64_t n = g.small_numel();
#pragma omp parallel for if (n > 16384)
  for (int64_t s = 0; s < n; ++s) f(s);
}

// The tap of window s holding its maximum; strict '>' keeps the first of equal maxima. A NaN
// is the maximum (the last NaN of the window), as in PyTorch's max_pool2d.
int first_max_tap(const float* x, const Planes& g, int64_t s) {
  int best = 0;
  for (int t = 1; t < 4; ++t) {
    const float v = x[g.tap(s, t)];
    if (v > x[g.tap(s, best)] || std::isnan(v)) best = t;
  }
  return best;
}

}  // namespace

void avgpool2x2_forward(const Tensor& x, Tensor& y) {
  const Planes g(x);
  const float* px = x.data();
  float* py = y.data();
  for_each_small(
      g, [&](int64_t s) { py[s] = 0.25f * (px[g.tap(s, 0)] + px[g.tap(s, 1)] + px[g.tap(s, 2)] + px[g.tap(s, 3)]); });
}

void avgpool2x2_backward(const Tensor& dy, Tensor& dx) {
  const Planes g(dx);
  const float* pdy = dy.data();
  float* pdx = dx.data();
  for_each_small(g, [&](int64_t s) {
    for (int t = 0; t < 4; ++t) pdx[g.tap(s, t)] = 0.25f * pdy[s];
  });
}

void maxpool2x2_forward(const Tensor& x, Tensor& y) {
  const Planes g(x);
  const float* px = x.data();
  float* py = y.data();
  for_each_small(g, [&](int64_t s) { py[s] = px[g.tap(s, first_max_tap(px, g, s))]; });
}

void maxpool2x2_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const Planes g(x);
  const float *px = x.data(), *pdy = dy.data();
  float* pdx = dx.data();
  for_each_small(g, [&](int64_t s) {
    const int best = first_max_tap(px, g, s);
    for (int t = 0; t < 4; ++t) pdx[g.tap(s, t)] = t == best ? pdy[s] : 0.0f;
  });
}

void upsample2x_forward(const Tensor& x, Tensor& y) {
  const Planes g(y);
  const float* px = x.data();
  float* py = y.data();
  for_each_small(g, [&](int64_t s) {
    for (int t = 0; t < 4; ++t) py[g.tap(s, t)] = px[s];
  });
}

void upsample2x_backward(const Tensor& dy, Tensor& dx) {
  const Planes g(dy);
  const float* pdy = dy.data();
  float* pdx = dx.data();
  for_each_small(
      g, [&](int64_t s) { pdx[s] = pdy[g.tap(s, 0)] + pdy[g.tap(s, 1)] + pdy[g.tap(s, 2)] + pdy[g.tap(s, 3)]; });
}

}  // namespace ember::cpu
