// CPU reference for the elementwise family: maps over contiguous float arrays.
#include <algorithm>
#include <cmath>

#include "kernels/channel_layout.h"
#include "kernels/cpu/vector_loops.h"
#include "kernels/kernels.h"

namespace ember::cpu {

namespace {
// Applies f(i) for i in [0, n): vectorised for this CPU, in parallel for large n (vector_loops.h).
template <class F>
void for_each(int64_t n, F f) {
  parallel_map(n, f);
}

// Applies f(y_row, x_row, c) to each [inner] row of an [N, C, inner] layout (c its channel), in
// parallel over rows for large tensors: the channel is known per row, so the inner loop is a plain
// vectorisable map (a division and a modulo per element made the bias add ~5x slower).
template <class F>
void for_each_channel_row(const ChannelLayout& l, float* y, const float* x, F f) {
  const int64_t inner = l.inner;
  parallel_ranges(
      l.N * l.C,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) f(y + r * inner, x + r * inner, r % l.C);
      },
      l.N * l.C * inner);
}
}  // namespace

void add(const Tensor& a, const Tensor& b, Tensor& y) {
  const float *pa = a.data(), *pb = b.data();
  float* py = y.data();
  for_each(y.numel(), [=](int64_t i) { py[i] = pa[i] + pb[i]; });
}

void sub(const Tensor& a, const Tensor& b, Tensor& y) {
  const float *pa = a.data(), *pb = b.data();
  float* py = y.data();
  for_each(y.numel(), [=](int64_t i) { py[i] = pa[i] - pb[i]; });
}

void mul(const Tensor& a, const Tensor& b, Tensor& y) {
  const float *pa = a.data(), *pb = b.data();
  float* py = y.data();
  for_each(y.numel(), [=](int64_t i) { py[i] = pa[i] * pb[i]; });
}

void axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  const float* px = x.data();
  float* py = y.data();
  if (beta == 0.0f) {  // do not read y: it may hold garbage (0 * NaN = NaN)
    for_each(y.numel(), [=](int64_t i) { py[i] = alpha * px[i]; });
  } else {
    for_each(y.numel(), [=](int64_t i) { py[i] = alpha * px[i] + beta * py[i]; });
  }
}

void scale_shift(const Tensor& x, float alpha, float beta, Tensor& y) {
  const float* px = x.data();
  float* py = y.data();
  for_each(y.numel(), [=](int64_t i) { py[i] = alpha * px[i] + beta; });
}

void bias_add(const Tensor& x, const Tensor& b, Tensor& y) {
  const ChannelLayout l = channel_layout(x);
  const int64_t inner = l.inner;
  const float *px = x.data(), *pb = b.data();
  float* py = y.data();
  if (inner == 1) {  // [N, C] (a Linear layer's output): rows of C, b added along each
    const int64_t C = l.C;
    parallel_ranges(
        l.N,
        [=](int64_t begin, int64_t end) {
          for (int64_t n = begin; n < end; ++n)
            for (int64_t c = 0; c < C; ++c) py[n * C + c] = px[n * C + c] + pb[c];
        },
        l.N * C);
    return;
  }
  for_each_channel_row(l, py, px, [=](float* yr, const float* xr, int64_t c) {
    const float bc = pb[c];
    for (int64_t j = 0; j < inner; ++j) yr[j] = xr[j] + bc;
  });
}

void sigma_bias_add(const Tensor& x, const Tensor& sigma, const Tensor& b, Tensor& y) {
  const ChannelLayout l = channel_layout(x);
  const int64_t inner = l.inner;
  const float s = sigma.data()[0];
  const float* px = x.data();
  float* py = y.data();
  if (b.defined()) {
    const float* pb = b.data();
    for_each_channel_row(l, py, px, [=](float* yr, const float* xr, int64_t c) {
      const float bc = pb[c];
      for (int64_t j = 0; j < inner; ++j) yr[j] = xr[j] / s + bc;
    });
  } else {
    for_each(y.numel(), [=](int64_t i) { py[i] = px[i] / s; });
  }
}

void bias_grad(const Tensor& dy, Tensor& db) {
  const ChannelLayout l = channel_layout(dy);
  const int64_t N = l.N, C = l.C, inner = l.inner;
  const float* pdy = dy.data();
  float* pdb = db.data();
  if (inner == 1) {
    // dy [N, C]: blocks of channels in parallel, each summing its block of every row: contiguous,
    // vectorised over the block's channels.
    constexpr int64_t kBlock = 64;
    parallel_ranges(
        (C + kBlock - 1) / kBlock,
        [&](int64_t begin, int64_t end) {
          for (int64_t blk = begin; blk < end; ++blk) {
            const int64_t c0 = blk * kBlock, width = std::min(kBlock, C - c0);
            double s[kBlock] = {};  // double: sums over N terms
            for (int64_t n = 0; n < N; ++n)
              for (int64_t k = 0; k < width; ++k) s[k] += pdy[n * C + c0 + k];
            for (int64_t k = 0; k < width; ++k) pdb[c0 + k] = static_cast<float>(s[k]);
          }
        },
        N * C);
    return;
  }
  // dy [N, C, inner]: channels in parallel, each the sum of its N rows (double lanes, fixed order).
  parallel_ranges(
      C,
      [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) {
          double s = 0;
          for (int64_t n = 0; n < N; ++n) s += sum_double(pdy + (n * C + c) * inner, inner);
          pdb[c] = static_cast<float>(s);
        }
      },
      N * C * inner);
}

// NaN propagates, as in PyTorch: written as "x <= 0 ? 0 : x", not "x > 0 ? x : 0", whose false
// branch a NaN would take.
void relu_forward(const Tensor& x, Tensor& y) {
  const float* px = x.data();
  float* py = y.data();
  for_each(y.numel(), [=](int64_t i) { py[i] = px[i] <= 0 ? 0.0f : px[i]; });
}

void relu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const float *px = x.data(), *pdy = dy.data();
  float* pdx = dx.data();
  // PyTorch's threshold_backward: the gradient passes unless x <= 0 (so it passes at a NaN).
  // Both sides loaded unconditionally, so the loop vectorises (vector_loops.h).
  for_each(dx.numel(), [=](int64_t i) {
    const float d = pdy[i];
    pdx[i] = px[i] <= 0 ? 0.0f : d;
  });
}

void leaky_relu_forward(const Tensor& x, float slope, Tensor& y) {
  const float* px = x.data();
  float* py = y.data();
  for_each(y.numel(), [=](int64_t i) {
    const float v = px[i];
    py[i] = v > 0 ? v : slope * v;
  });
}

void leaky_relu_backward(const Tensor& x, float slope, const Tensor& dy, Tensor& dx) {
  const float *px = x.data(), *pdy = dy.data();
  float* pdx = dx.data();
  for_each(dx.numel(), [=](int64_t i) {
    const float d = pdy[i];
    pdx[i] = px[i] > 0 ? d : slope * d;
  });
}

void tanh_forward(const Tensor& x, Tensor& y) {
  const float* px = x.data();
  float* py = y.data();
  for_each(y.numel(), [=](int64_t i) { py[i] = std::tanh(px[i]); });
}

void tanh_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const float *py = y.data(), *pdy = dy.data();
  float* pdx = dx.data();
  for_each(dx.numel(), [=](int64_t i) { pdx[i] = pdy[i] * (1.0f - py[i] * py[i]); });
}

void sigmoid_forward(const Tensor& x, Tensor& y) {
  const float* px = x.data();
  float* py = y.data();
  // Two branches so exp never overflows.
  for_each(y.numel(), [=](int64_t i) {
    float v = px[i];
    py[i] = v >= 0 ? 1.0f / (1.0f + std::exp(-v)) : std::exp(v) / (1.0f + std::exp(v));
  });
}

void sigmoid_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const float *py = y.data(), *pdy = dy.data();
  float* pdx = dx.data();
  for_each(dx.numel(), [=](int64_t i) { pdx[i] = pdy[i] * py[i] * (1.0f - py[i]); });
}

void gamma_residual_forward(const Tensor& gamma, const Tensor& o, const Tensor& x, Tensor& y) {
  const float g = gamma.data()[0];
  const float *po = o.data(), *px = x.data();
  float* py = y.data();
  for_each(y.numel(), [=](int64_t i) { py[i] = g * po[i] + px[i]; });
}

void gamma_residual_backward(const Tensor& gamma, const Tensor& o, const Tensor& dy, Tensor& dgamma, Tensor& d_o) {
  const float g = gamma.data()[0];
  const float *po = o.data(), *pdy = dy.data();
  float* pdo = d_o.data();
  const int64_t n = o.numel();
  for_each(n, [=](int64_t i) { pdo[i] = g * pdy[i]; });
  // A serial sum in double: a fixed order, so repeated runs give identical bits.
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(po[i]) * pdy[i];
  dgamma.data()[0] = static_cast<float>(s);
}

}  // namespace ember::cpu
