// CPU 2-D convolution (NCHW, cross-correlation, square stride and padding) by im2col / col2im +
// GEMM, one of the two paths kernels/cpu/conv_choice.cpp chooses between per shape (the other is
// oneDNN); the threads work inside the GEMM (and the copies, with the built-in GEMM).
//
// For one image, with R = Ci*KH*KW and P = Ho*Wo:
//   col [R, P]:  col[(ci*KH + kh)*KW + kw, oh*Wo + ow] = x[ci, oh*s - p + kh, ow*s - p + kw]  (0 in the padding)
//   forward:          y [Co, P]  = w [Co, R] col [R, P]
//   backward data:    col [R, P] = w^T [R, Co] dy [Co, P],  then dx = col2im(col)  (the adjoint of im2col)
//   backward filter:  dw [Co, R] = sum over images of dy [Co, P] col^T [P, R]
// A 1x1 kernel with stride 1 and no padding has col == x [Ci, H*W], so it is a plain GEMM.
//
// Small images make thin GEMMs (P = 16 columns at 4x4), which run far below the BLAS's rate. So
// images go in chunks of nb (images_per_chunk): the chunk's col blocks sit side by side in one
// col [R, nb*P], and dy / y of the chunk are gathered to / scattered from [Co, nb*P], so each
// product is one GEMM with nb*P columns. Buffers are per-thread scratch (kernels/cpu/scratch.h).
#include <algorithm>
#include <vector>

#include "kernels/cpu/conv_paths.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_fallback.h"
#include "kernels/cpu/scratch.h"

namespace ember::cpu::conv_paths {

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

// Columns: at least this many per GEMM (when the batch has the images), and col at most this big.
constexpr int64_t kMinGemmCols = 256;
constexpr int64_t kMaxColFloats = int64_t{4} << 20;  // 16 MB

int64_t images_per_chunk(const ConvGeom& g) {
  const int64_t P = g.cols(), R = g.rows();
  int64_t nb = (kMinGemmCols + P - 1) / P;
  nb = std::min(nb, std::max<int64_t>(1, kMaxColFloats / std::max<int64_t>(1, R * P)));
  return std::max<int64_t>(1, std::min(nb, g.N));
}

// col [R, P] (row stride ld) from one image x [Ci, H, W].
EMBER_VECTOR_CLONES void im2col(const float* x, const ConvGeom& g, float* col, int64_t ld) {
  const int64_t R = g.rows(), P = g.cols();
#pragma omp parallel for if (kParallelCopies && R * P > 65536)
  for (int64_t r = 0; r < R; ++r) {
    const int64_t ci = r / (g.KH * g.KW), kh = (r / g.KW) % g.KH, kw = r % g.KW;
    const float* plane = x + ci * g.H * g.W;
    float* out = col + r * ld;
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

// dx [Ci, H, W] = col2im(col [R, P], row stride ld): each input pixel gets the sum of the col
// entries that im2col copied from it (overwrites dx). One thread per input channel: planes never
// overlap.
EMBER_VECTOR_CLONES void col2im(const float* col, const ConvGeom& g, float* dx, int64_t ld) {
  const int64_t P = g.cols();
#pragma omp parallel for if (kParallelCopies && g.rows() * P > 65536)
  for (int64_t ci = 0; ci < g.Ci; ++ci) {
    float* plane = dx + ci * g.H * g.W;
    std::fill(plane, plane + g.H * g.W, 0.0f);
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const float* in = col + ((ci * g.KH + kh) * g.KW + kw) * ld;
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

// Copies nb blocks [rows, P] (block i at src + i * src_step, rows P apart) side by side into
// dst [rows, nb*P], and back (scatter).
void gather_blocks(const float* src, int64_t src_step, int64_t nb, int64_t rows, int64_t P, float* dst) {
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t r = 0; r < rows; ++r)
      std::copy(src + i * src_step + r * P, src + i * src_step + (r + 1) * P, dst + r * nb * P + i * P);
}
void scatter_blocks(const float* src, int64_t nb, int64_t rows, int64_t P, float* dst, int64_t dst_step) {
  for (int64_t i = 0; i < nb; ++i)
    for (int64_t r = 0; r < rows; ++r)
      std::copy(src + r * nb * P + i * P, src + r * nb * P + (i + 1) * P, dst + i * dst_step + r * P);
}

// col [R, nb*P] for images x[n0 .. n0+nb): im2col of each into its column block.
void chunk_col(const float* x, const ConvGeom& g, int64_t n0, int64_t nb, float* col) {
  const int64_t P = g.cols(), image = g.Ci * g.H * g.W;
  if (g.pointwise())
    gather_blocks(x + n0 * image, image, nb, g.Ci, P, col);
  else
    for (int64_t i = 0; i < nb; ++i) im2col(x + (n0 + i) * image, g, col + i * P, nb * P);
}

}  // namespace

void im2col_forward(const Tensor& x, const Tensor& w, int stride, int pad, Tensor& y) {
  const ConvGeom g = geometry(x, w, y, stride, pad);
  const int64_t R = g.rows(), P = g.cols(), chunk = images_per_chunk(g);
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, g.N - n0), cols = nb * P;
    float* yn = y.data() + n0 * g.Co * P;  // [nb, Co, P]
    if (nb == 1 && g.pointwise()) {        // y_n = w x_n: no copies at all
      detail::gemm(false, false, g.Co, P, R, 1.0f, w.data(), R, x.data() + n0 * g.Ci * P, P, 0.0f, yn, P);
      continue;
    }
    float* col = detail::scratch(R * cols + (nb > 1 ? g.Co * cols : 0));  // col [R, nb*P], then y [Co, nb*P]
    chunk_col(x.data(), g, n0, nb, col);
    float* out = nb > 1 ? col + R * cols : yn;
    detail::gemm(false, false, g.Co, cols, R, 1.0f, w.data(), R, col, cols, 0.0f, out, cols);
    if (nb > 1) scatter_blocks(out, nb, g.Co, P, yn, g.Co * P);
  }
}

void im2col_backward_data(const Tensor& dy, const Tensor& w, int stride, int pad, Tensor& dx) {
  const ConvGeom g = geometry(dx, w, dy, stride, pad);
  const int64_t R = g.rows(), P = g.cols(), chunk = images_per_chunk(g), image = g.Ci * g.H * g.W;
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, g.N - n0), cols = nb * P;
    const float* dyn = dy.data() + n0 * g.Co * P;  // [nb, Co, P]
    float* dxn = dx.data() + n0 * image;           // [nb, Ci, H*W]
    if (nb == 1 && g.pointwise()) {
      detail::gemm(true, false, R, P, g.Co, 1.0f, w.data(), R, dyn, P, 0.0f, dxn, P);  // w^T dy
      continue;
    }
    float* col = detail::scratch(R * cols + (nb > 1 ? g.Co * cols : 0));  // col [R, nb*P], dy [Co, nb*P]
    const float* d = dyn;
    if (nb > 1) {
      float* gathered = col + R * cols;
      gather_blocks(dyn, g.Co * P, nb, g.Co, P, gathered);
      d = gathered;
    }
    detail::gemm(true, false, R, cols, g.Co, 1.0f, w.data(), R, d, cols, 0.0f, col, cols);  // w^T dy
    if (g.pointwise())
      scatter_blocks(col, nb, g.Ci, P, dxn, image);
    else
      for (int64_t i = 0; i < nb; ++i) col2im(col + i * P, g, dxn + i * image, cols);
  }
}

void im2col_backward_filter(const Tensor& x, const Tensor& dy, int stride, int pad, Tensor& dw) {
  const ConvGeom g = geometry(x, dw, dy, stride, pad);
  const int64_t R = g.rows(), P = g.cols(), chunk = images_per_chunk(g);
  if (g.N == 0) {
    std::fill(dw.data(), dw.data() + dw.numel(), 0.0f);
    return;
  }
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, g.N - n0), cols = nb * P;
    const float* dyn = dy.data() + n0 * g.Co * P;  // [nb, Co, P]
    const float* b = x.data() + n0 * g.Ci * P;     // pointwise, one image: x_n is col
    const float* d = dyn;
    if (!(nb == 1 && g.pointwise())) {
      float* col = detail::scratch(R * cols + (nb > 1 ? g.Co * cols : 0));  // col [R, nb*P], dy [Co, nb*P]
      chunk_col(x.data(), g, n0, nb, col);
      b = col;
      if (nb > 1) {
        float* gathered = col + R * cols;
        gather_blocks(dyn, g.Co * P, nb, g.Co, P, gathered);
        d = gathered;
      }
    }
    // dw [Co, R] (+)= dy [Co, nb*P] col^T; the first chunk assigns.
    detail::gemm(false, true, g.Co, R, cols, 1.0f, d, cols, b, cols, n0 == 0 ? 0.0f : 1.0f, dw.data(), R);
  }
}

}  // namespace ember::cpu::conv_paths
