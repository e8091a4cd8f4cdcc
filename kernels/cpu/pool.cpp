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
  // Offset of tap t (0..3) from tap 0 of a window.
  int64_t tap(int t) const { return (t / 2) * W + t % 2; }
};

// Calls f(s, b) for each small-side element s, with b the large-side index of its window's tap 0,
// in parallel over rows when large. Small row r = p * Hs + i covers large rows 2r and 2r + 1
// (p * H + 2i = 2r as H = 2 Hs), so no index is divided per element.
template <class F>
void for_each_window(const Planes& g, F f) {
  const int64_t rows = g.planes * g.Hs(), ws = g.Ws();
#pragma omp parallel for if (rows * ws > 16384)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < ws; ++j) f(r * ws + j, 2 * r * g.W + 2 * j);
}

// The tap of the window at b holding its maximum; strict '>' keeps the first of equal maxima. A
// NaN is the maximum (the last NaN of the window), as in PyTorch's max_pool2d.
int first_max_tap(const float* x, const Planes& g, int64_t b) {
  int best = 0;
  for (int t = 1; t < 4; ++t) {
    const float v = x[b + g.tap(t)];
    if (v > x[b + g.tap(best)] || std::isnan(v)) best = t;
  }
  return best;
}

}  // namespace

void avgpool2x2_forward(const Tensor& x, Tensor& y) {
  const Planes g(x);
  const float* px = x.data();
  float* py = y.data();
  for_each_window(g, [&](int64_t s, int64_t b) {
    py[s] = 0.25f * (px[b + g.tap(0)] + px[b + g.tap(1)] + px[b + g.tap(2)] + px[b + g.tap(3)]);
  });
}

void avgpool2x2_backward(const Tensor& dy, Tensor& dx) {
  const Planes g(dx);
  const float* pdy = dy.data();
  float* pdx = dx.data();
  for_each_window(g, [&](int64_t s, int64_t b) {
    for (int t = 0; t < 4; ++t) pdx[b + g.tap(t)] = 0.25f * pdy[s];
  });
}

void maxpool2x2_forward(const Tensor& x, Tensor& y) {
  const Planes g(x);
  const float* px = x.data();
  float* py = y.data();
  for_each_window(g, [&](int64_t s, int64_t b) { py[s] = px[b + g.tap(first_max_tap(px, g, b))]; });
}

void maxpool2x2_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const Planes g(x);
  const float *px = x.data(), *pdy = dy.data();
  float* pdx = dx.data();
  for_each_window(g, [&](int64_t s, int64_t b) {
    const int best = first_max_tap(px, g, b);
    for (int t = 0; t < 4; ++t) pdx[b + g.tap(t)] = t == best ? pdy[s] : 0.0f;
  });
}

void upsample2x_forward(const Tensor& x, Tensor& y) {
  const Planes g(y);
  const float* px = x.data();
  float* py = y.data();
  for_each_window(g, [&](int64_t s, int64_t b) {
    for (int t = 0; t < 4; ++t) py[b + g.tap(t)] = px[s];
  });
}

void upsample2x_backward(const Tensor& dy, Tensor& dx) {
  const Planes g(dy);
  const float* pdy = dy.data();
  float* pdx = dx.data();
  for_each_window(g, [&](int64_t s, int64_t b) {
    pdx[s] = pdy[b + g.tap(0)] + pdy[b + g.tap(1)] + pdy[b + g.tap(2)] + pdy[b + g.tap(3)];
  });
}

}  // namespace ember::cpu
