// CPU reference for 2x2 pooling (stride 2) and nearest-neighbour 2x upsampling on NCHW.
// Every function runs over planes: [N*C, H, W] on the input side, [N*C, H/2, W/2] (pooling) or
// [N*C, 2H, 2W] (upsampling) on the other. Window order is (0,0), (0,1), (1,0), (1,1).
// Loops run through vector_loops.h (vectorised for this CPU, threaded over rows when large); the
// max-pool works on blocks of rows rather than window by window, see MaxPoolBlock.
#include <algorithm>

#include "kernels/cpu/scratch.h"
#include "kernels/cpu/vector_loops.h"
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

// Calls f(begin, end) on ranges of small-side rows, or f(r) for each small-side row r, vectorised
// and in parallel over rows when large (vector_loops.h). Small row r = p * Hs + i covers large rows
// 2r and 2r + 1 (p * H + 2i = 2r as H = 2 Hs), so no index is divided per element.
template <class F>
void for_each_row_range(const Planes& g, F f) {
  parallel_ranges(g.planes * g.Hs(), f, g.planes * g.H * g.W);
}

template <class F>
void for_each_row(const Planes& g, F f) {
  for_each_row_range(g, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) f(r);
  });
}

// Calls f(s, b) for each small-side element s, with b the large-side index of its window's tap 0.
template <class F>
void for_each_window(const Planes& g, F f) {
  const int64_t ws = g.Ws(), W = g.W;
  for_each_row(g, [&](int64_t r) {
    for (int64_t j = 0; j < ws; ++j) f(r * ws + j, 2 * r * W + 2 * j);
  });
}

// The max-pool's rule: v replaces the best so far when strictly greater (the first of equal maxima
// stays) or NaN (so a NaN is the maximum, the last NaN of a window, as in PyTorch's max_pool2d).
inline bool replaces(float v, float best) { return v > best || v != v; }

// Calls f(r0, R) for blocks of R consecutive window rows r0.. (about 1024 windows a block), in
// parallel over rows when large. The 2R large rows of a block are contiguous.
template <class F>
void for_each_block(const Planes& g, F f) {
  const int64_t ws = g.Ws(), block = std::max<int64_t>(1, 1024 / ws);
  for_each_row_range(g, [&](int64_t begin, int64_t end) {
    for (int64_t r0 = begin; r0 < end; r0 += block) f(r0, std::min(block, end - r0));
  });
}

// The max-pool of one block of window rows, in loops that each run over the whole block: a
// window-by-window loop is as short as a row (14 and 7 windows in the classifier), which left the
// vectorised loop unused and its scalar tail branching on the data (12 ns per window). With n =
// 2R*Ws horizontal pairs in the block's 2R large rows (pair p = x[2p], x[2p + 1]):
//   1. h[p] = the pair's winner, right[p] = 1 if it was x[2p + 1];
//   2. v[q] = winner of h[q] and the pair below it, h[q + Ws]; down[q] = 1 if the lower one won.
//      Where q lies in a window's top row, v[q] is the window's maximum, as the one-by-one rule over
//      taps 0..3 gives: a NaN in the lower pair beats anything and a number there wins only when
//      strictly greater. (In the other rows v is computed and not used, which costs less than a
//      short loop per row.)
// The buffers are per-thread scratch (kernels/cpu/scratch.h).
struct MaxPoolBlock {
  int64_t n, ws;
  float *h, *right, *v, *down;
  float *keep, *grad;  // backward only: see maxpool2x2_backward

  MaxPoolBlock(const float* x, int64_t R, int64_t ws_) : n(2 * R * ws_), ws(ws_) {
    float* s = detail::scratch(6 * n);
    h = s, right = s + n, v = s + 2 * n, down = s + 3 * n, keep = s + 4 * n, grad = s + 5 * n;
    for (int64_t p = 0; p < n; ++p) {
      const float a = x[2 * p], b = x[2 * p + 1];
      const bool r = replaces(b, a);
      h[p] = r ? b : a;
      right[p] = r ? 1.0f : 0.0f;
    }
    for (int64_t q = 0; q + ws < n; ++q) {
      const float top = h[q], bottom = h[q + ws];
      const bool d = replaces(bottom, top);
      v[q] = d ? bottom : top;
      down[q] = d ? 1.0f : 0.0f;
    }
  }
  const float* window_max(int64_t r) const { return v + 2 * r * ws; }  // block row r's Ws maxima
};

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
  const int64_t W = g.W, ws = g.Ws();
  for_each_block(g, [=](int64_t r0, int64_t R) {
    const MaxPoolBlock b(px + 2 * r0 * W, R, ws);
    for (int64_t r = 0; r < R; ++r) std::copy(b.window_max(r), b.window_max(r) + ws, py + (r0 + r) * ws);
  });
}

// The gradient goes to the tap the forward took, found again from x (cheaper than storing it: the
// window is read from memory once either way). After MaxPoolBlock, per pair p of the block:
// keep[p] = 1 if p is the window's winning pair (not down in the top row, down in the bottom row)
// and grad[p] = the window's dy; then dx[2p], dx[2p + 1] = grad[p] at the winning tap, 0 elsewhere.
// Only copies run per row; the loops that look at the data run over the whole block.
void maxpool2x2_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const Planes g(x);
  const float *px = x.data(), *pdy = dy.data();
  float* pdx = dx.data();
  const int64_t W = g.W, ws = g.Ws();
  for_each_block(g, [=](int64_t r0, int64_t R) {
    const MaxPoolBlock b(px + 2 * r0 * W, R, ws);
    for (int64_t r = 0; r < R; ++r) {
      const float* down = b.down + 2 * r * ws;  // the window row's top pairs
      float *keep_top = b.keep + 2 * r * ws, *keep_bottom = keep_top + ws;
      for (int64_t j = 0; j < ws; ++j) {
        keep_top[j] = 1.0f - down[j];
        keep_bottom[j] = down[j];
      }
      const float* dyr = pdy + (r0 + r) * ws;
      std::copy(dyr, dyr + ws, b.grad + 2 * r * ws);
      std::copy(dyr, dyr + ws, b.grad + (2 * r + 1) * ws);
    }
    float* out = pdx + 2 * r0 * W;
    for (int64_t p = 0; p < b.n; ++p) {
      const float d = b.grad[p];
      const bool keep = b.keep[p] != 0.0f, right = b.right[p] != 0.0f;
      out[2 * p] = keep && !right ? d : 0.0f;
      out[2 * p + 1] = keep && right ? d : 0.0f;
    }
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
