// CPU reference for 2-D convolution (NCHW, cross-correlation, square stride and padding):
// im2col / col2im + GEMM, one image at a time; the threads work inside the GEMM (and the copies,
// with the built-in GEMM).
//
// For one image, with R = Ci*KH*KW and P = Ho*Wo:
//   col [R, P]:  col[(ci*KH + kh)*KW + kw, oh*Wo + ow] = x[ci, oh*s - p + kh, ow*s - p + kw]  (0 in the padding)
//   forward:          y [Co, P]  = w [Co, R] col [R, P]
//   backward data:    col [R, P] = w^T [R, Co] dy [Co, P],  then dx = col2im(col)  (the adjoint of im2col)
//   backward filter:  dw [Co, R] = sum over images of dy [Co, P] col^T [P, R]
// A 1x1 kernel with stride 1 and no padding has col == x [Ci, H*W], so it is a plain GEMM.
#include <algorithm>
#include <vector>

#include "kernels/cpu/gemm_fallback.h"
#include "kernels/kernels.h"

namespace ember::cpu {

namespace {

#ifdef EMBER_WITH_CBLAS
// OpenBLAS (pthreads) has its own thread pool: OpenMP threads still spinning after a parallel
// im2col would compete with it for the cores (3x slower on 2 cores), so the copies stay serial.
constexpr bool kParallelCopies = false;
#else
constexpr bool kParallelCopies = true;  // the fallback GEMM shares the OpenMP pool
#endif

struct ConvGeom {
  int64_t N, Ci, H, W;  // input  [N, Ci, H, W]
  int64_t Co, KH, KW;   // weight [Co, Ci, KH, KW]
  int64_t Ho, Wo;       // output [N, Co, Ho, Wo]
  int64_t stride, pad;
  int64_t rows() const { return Ci * KH * KW; }  // R
  int64_t cols() const { return Ho * Wo; }       // P
  bool pointwise() const { return KH == 1 && KW == 1 && stride == 1 && pad == 0; }
};

// in: input-shaped [N, Ci, H, W]; out: output-shaped [N, Co, Ho, Wo].
ConvGeom geometry(const Tensor& in, const Tensor& w, const Tensor& out, int stride, int pad) {
  return ConvGeom{in.size(0), in.size(1),  in.size(2),  in.size(3), w.size(0), w.size(2),
                  w.size(3),  out.size(2), out.size(3), stride,     pad};
}

// col [R, P] from one image x [Ci, H, W].
void im2col(const float* x, const ConvGeom& g, float* col) {
  const int64_t R = g.rows(), P = g.cols();
#pragma omp parallel for if (kParallelCopies && R * P > 65536)
  for (int64_t r = 0; r < R; ++r) {
    const int64_t ci = r / (g.KH * g.KW), kh = (r / g.KW) % g.KH, kw = r % g.KW;
    const float* plane = x + ci * g.H * g.W;
    float* out = col + r * P;
    for (int64_t oh = 0; oh < g.Ho; ++oh) {
      const int64_t ih = oh * g.stride - g.pad + kh;
      float* out_row = out + oh * g.Wo;
      if (ih < 0 || ih >= g.H) {
        std::fill(out_row, out_row + g.Wo, 0.0f);
        continue;
      }
      for (int64_t ow = 0; ow < g.Wo; ++ow) {
        const int64_t iw = ow * g.stride - g.pad + kw;
        out_row[ow] = (iw >= 0 && iw < g.W) ? plane[ih * g.W + iw] : 0.0f;
      }
    }
  }
}

// dx [Ci, H, W] = col2im(col [R, P]): each input pixel gets the sum of the col entries that
// im2col copied from it (overwrites dx). One thread per input channel: planes never overlap.
void col2im(const float* col, const ConvGeom& g, float* dx) {
  const int64_t P = g.cols();
#pragma omp parallel for if (kParallelCopies && g.rows() * P > 65536)
  for (int64_t ci = 0; ci < g.Ci; ++ci) {
    float* plane = dx + ci * g.H * g.W;
    std::fill(plane, plane + g.H * g.W, 0.0f);
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const float* in = col + ((ci * g.KH + kh) * g.KW + kw) * P;
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          const int64_t ih = oh * g.stride - g.pad + kh;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t ow = 0; ow < g.Wo; ++ow) {
            const int64_t iw = ow * g.stride - g.pad + kw;
            if (iw >= 0 && iw < g.W) plane[ih * g.W + iw] += in[oh * g.Wo + ow];
          }
        }
      }
  }
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, int stride, int pad, Tensor& y) {
  const ConvGeom g = geometry(x, w, y, stride, pad);
  const int64_t R = g.rows(), P = g.cols();
  std::vector<float> col(g.pointwise() ? 0 : R * P);  // [R, P]
  for (int64_t n = 0; n < g.N; ++n) {
    const float* xn = x.data() + n * g.Ci * g.H * g.W;  // [Ci, H*W]
    float* yn = y.data() + n * g.Co * P;                // [Co, P]
    const float* b = xn;
    if (!g.pointwise()) {
      im2col(xn, g, col.data());
      b = col.data();
    }
    detail::gemm(false, false, g.Co, P, R, 1.0f, w.data(), R, b, P, 0.0f, yn, P);
  }
}

void conv2d_backward_data(const Tensor& dy, const Tensor& w, int stride, int pad, Tensor& dx) {
  const ConvGeom g = geometry(dx, w, dy, stride, pad);
  const int64_t R = g.rows(), P = g.cols();
  std::vector<float> col(g.pointwise() ? 0 : R * P);  // [R, P]
  for (int64_t n = 0; n < g.N; ++n) {
    const float* dyn = dy.data() + n * g.Co * P;    // [Co, P]
    float* dxn = dx.data() + n * g.Ci * g.H * g.W;  // [Ci, H*W]
    float* c = g.pointwise() ? dxn : col.data();
    detail::gemm(true, false, R, P, g.Co, 1.0f, w.data(), R, dyn, P, 0.0f, c, P);  // w^T dy
    if (!g.pointwise()) col2im(col.data(), g, dxn);
  }
}

void conv2d_backward_filter(const Tensor& x, const Tensor& dy, int stride, int pad, Tensor& dw) {
  const ConvGeom g = geometry(x, dw, dy, stride, pad);
  const int64_t R = g.rows(), P = g.cols();
  if (g.N == 0) {
    std::fill(dw.data(), dw.data() + dw.numel(), 0.0f);
    return;
  }
  std::vector<float> col(g.pointwise() ? 0 : R * P);  // [R, P]
  for (int64_t n = 0; n < g.N; ++n) {
    const float* xn = x.data() + n * g.Ci * g.H * g.W;  // [Ci, H*W]
    const float* dyn = dy.data() + n * g.Co * P;        // [Co, P]
    const float* b = xn;
    if (!g.pointwise()) {
      im2col(xn, g, col.data());
      b = col.data();
    }
    // dw [Co, R] (+)= dy [Co, P] col^T; the first image assigns.
    detail::gemm(false, true, g.Co, R, P, 1.0f, dyn, P, b, P, n == 0 ? 0.0f : 1.0f, dw.data(), R);
  }
}

}  // namespace ember::cpu
