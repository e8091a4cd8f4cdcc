// Naive double-precision references for GEMM and 2-D convolution, written from the defining
// formulas (no im2col, no blocking). Header-only: tests/test_{gemm,conv}.cpp and
// benchmarks/bench_cpu.cpp check the kernels against these.
#pragma once
#include <cstdint>
#include <vector>

namespace ember::test::ref {

// c[M,N] = alpha * op(a) op(b) + beta * c0, read from the stored row-major layouts: a is [M,K]
// (or [K,M] when ta) with row stride lda, b is [K,N] (or [N,K] when tb) with row stride ldb,
// c0 / the result have row stride ldc (entries past N are 0 in the result). beta == 0 ignores c0.
inline std::vector<double> gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                                const std::vector<float>& a, int64_t lda, const std::vector<float>& b, int64_t ldb,
                                double beta, const std::vector<float>& c0, int64_t ldc) {
  std::vector<double> c(M * ldc, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < K; ++p) {
        const double av = ta ? a[p * lda + i] : a[i * lda + p];
        const double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      c[i * ldc + j] = alpha * acc + (beta != 0 ? beta * c0[i * ldc + j] : 0.0);
    }
  return c;
}

// x [N, Ci, H, W], w [Co, Ci, KH, KW], y [N, Co, Ho, Wo]; cross-correlation, square stride and padding.
struct ConvShape {
  int64_t N, Ci, H, W, Co, KH, KW;
  int stride, pad;
  int64_t Ho() const { return (H + 2 * pad - KH) / stride + 1; }
  int64_t Wo() const { return (W + 2 * pad - KW) / stride + 1; }
};

inline int64_t at4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t B, int64_t C, int64_t D) {
  return ((a * B + b) * C + c) * D + d;
}

// y[n,co,oh,ow] = sum_{ci,kh,kw} x[n,ci,oh*s-p+kh,ow*s-p+kw] w[co,ci,kh,kw]   (0 outside x)
inline std::vector<double> conv_forward(const ConvShape& c, const std::vector<float>& x, const std::vector<float>& w) {
  const int64_t Ho = c.Ho(), Wo = c.Wo();
  std::vector<double> y(c.N * c.Co * Ho * Wo, 0.0);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t co = 0; co < c.Co; ++co)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double s = 0;
          for (int64_t ci = 0; ci < c.Ci; ++ci)
            for (int64_t kh = 0; kh < c.KH; ++kh)
              for (int64_t kw = 0; kw < c.KW; ++kw) {
                const int64_t ih = oh * c.stride - c.pad + kh, iw = ow * c.stride - c.pad + kw;
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                s += static_cast<double>(x[at4(n, ci, ih, iw, c.Ci, c.H, c.W)]) *
                     w[at4(co, ci, kh, kw, c.Ci, c.KH, c.KW)];
              }
          y[at4(n, co, oh, ow, c.Co, Ho, Wo)] = s;
        }
  return y;
}

// dx[n,ci,ih,iw] = sum over the (co, kh, kw) whose window row oh = (ih+p-kh)/s (and column) is
// whole and in range, of dy[n,co,oh,ow] w[co,ci,kh,kw].
inline std::vector<double> conv_backward_data(const ConvShape& c, const std::vector<float>& dy,
                                              const std::vector<float>& w) {
  const int64_t Ho = c.Ho(), Wo = c.Wo();
  std::vector<double> dx(c.N * c.Ci * c.H * c.W, 0.0);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t ci = 0; ci < c.Ci; ++ci)
      for (int64_t ih = 0; ih < c.H; ++ih)
        for (int64_t iw = 0; iw < c.W; ++iw) {
          double s = 0;
          for (int64_t co = 0; co < c.Co; ++co)
            for (int64_t kh = 0; kh < c.KH; ++kh)
              for (int64_t kw = 0; kw < c.KW; ++kw) {
                const int64_t th = ih + c.pad - kh, tw = iw + c.pad - kw;
                if (th < 0 || tw < 0 || th % c.stride || tw % c.stride) continue;
                const int64_t oh = th / c.stride, ow = tw / c.stride;
                if (oh >= Ho || ow >= Wo) continue;
                s += static_cast<double>(dy[at4(n, co, oh, ow, c.Co, Ho, Wo)]) *
                     w[at4(co, ci, kh, kw, c.Ci, c.KH, c.KW)];
              }
          dx[at4(n, ci, ih, iw, c.Ci, c.H, c.W)] = s;
        }
  return dx;
}

// dw[co,ci,kh,kw] = sum_{n,oh,ow} dy[n,co,oh,ow] x[n,ci,oh*s-p+kh,ow*s-p+kw]
inline std::vector<double> conv_backward_filter(const ConvShape& c, const std::vector<float>& x,
                                                const std::vector<float>& dy) {
  const int64_t Ho = c.Ho(), Wo = c.Wo();
  std::vector<double> dw(c.Co * c.Ci * c.KH * c.KW, 0.0);
  for (int64_t co = 0; co < c.Co; ++co)
    for (int64_t ci = 0; ci < c.Ci; ++ci)
      for (int64_t kh = 0; kh < c.KH; ++kh)
        for (int64_t kw = 0; kw < c.KW; ++kw) {
          double s = 0;
          for (int64_t n = 0; n < c.N; ++n)
            for (int64_t oh = 0; oh < Ho; ++oh)
              for (int64_t ow = 0; ow < Wo; ++ow) {
                const int64_t ih = oh * c.stride - c.pad + kh, iw = ow * c.stride - c.pad + kw;
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                s += static_cast<double>(dy[at4(n, co, oh, ow, c.Co, Ho, Wo)]) * x[at4(n, ci, ih, iw, c.Ci, c.H, c.W)];
              }
          dw[at4(co, ci, kh, kw, c.Ci, c.KH, c.KW)] = s;
        }
  return dw;
}

}  // namespace ember::test::ref
