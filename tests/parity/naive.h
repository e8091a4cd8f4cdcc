// Double-precision references shared by tests/test_layers.cpp and tests/test_models.cpp: plain
// loops, no ember op, so they are independent of what they check.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace ember::naive {

// A weight viewed as a matrix along `dim` (rows = w.size(dim)), as spectral norm views it.
struct Mat {
  int64_t rows = 0, cols = 0;
  std::vector<double> a;  // row-major
  double at(int64_t r, int64_t c) const { return a[r * cols + c]; }
};

inline Mat matrix_view(const Tensor& w, int dim) {
  std::vector<float> v = w.to_vector();
  Mat m;
  m.rows = w.size(dim);
  m.cols = w.numel() / m.rows;
  m.a.resize(v.size());
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= w.size(d);
  for (int d = dim + 1; d < w.dim(); ++d) inner *= w.size(d);
  // element (o, r, i) of the [outer, rows, inner] view goes to row r, column o * inner + i
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t r = 0; r < m.rows; ++r)
      for (int64_t i = 0; i < inner; ++i) m.a[r * m.cols + o * inner + i] = v[(o * m.rows + r) * inner + i];
  return m;
}

// Largest singular value by power iteration on M^T M, run to convergence in double.
inline double top_singular_value(const Mat& m) {
  std::vector<double> v(m.cols, 1.0), u(m.rows);
  for (int64_t j = 0; j < m.cols; ++j) v[j] = 1.0 + 0.01 * static_cast<double>(j % 7);  // not orthogonal to the top vector
  double sigma = 0;
  for (int it = 0; it < 5000; ++it) {
    for (int64_t r = 0; r < m.rows; ++r) {
      double s = 0;
      for (int64_t c = 0; c < m.cols; ++c) s += m.at(r, c) * v[c];
      u[r] = s;
    }
    double nu = 0;
    for (double x : u) nu += x * x;
    nu = std::sqrt(nu);
    for (int64_t c = 0; c < m.cols; ++c) {
      double s = 0;
      for (int64_t r = 0; r < m.rows; ++r) s += m.at(r, c) * u[r] / nu;
      v[c] = s;
    }
    double nv = 0;
    for (double x : v) nv += x * x;
    nv = std::sqrt(nv);
    for (double& x : v) x /= nv;
    if (std::abs(nv - sigma) <= 1e-13 * nv) return nv;
    sigma = nv;
  }
  return sigma;
}

// u^T M v in double (spectral norm's sigma for given u, v).
inline double bilinear(const Mat& m, const std::vector<float>& u, const std::vector<float>& v) {
  double s = 0;
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c) s += u[r] * m.at(r, c) * v[c];
  return s;
}

// y [N, Co, Ho, Wo] of a cross-correlation, x [N, Ci, H, W], w [Co, Ci, K, K], b [Co] or empty.
inline std::vector<double> conv2d(const std::vector<double>& x, int64_t N, int64_t Ci, int64_t H, int64_t W,
                                  const std::vector<double>& w, int64_t Co, int64_t K, const std::vector<double>& b,
                                  int s, int p, int64_t& Ho, int64_t& Wo) {
  Ho = (H + 2 * p - K) / s + 1, Wo = (W + 2 * p - K) / s + 1;
  std::vector<double> y(N * Co * Ho * Wo, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = b.empty() ? 0.0 : b[co];
          for (int64_t ci = 0; ci < Ci; ++ci)
            for (int64_t kh = 0; kh < K; ++kh)
              for (int64_t kw = 0; kw < K; ++kw) {
                int64_t ih = oh * s - p + kh, iw = ow * s - p + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += x[((n * Ci + ci) * H + ih) * W + iw] * w[((co * Ci + ci) * K + kh) * K + kw];
              }
          y[((n * Co + co) * Ho + oh) * Wo + ow] = acc;
        }
  return y;
}

// Transposed convolution by scattering, w [Ci, Co, K, K]; output (H-1)s - 2p + K + op.
inline std::vector<double> conv_transpose2d(const std::vector<double>& x, int64_t N, int64_t Ci, int64_t H,
                                            int64_t W, const std::vector<double>& w, int64_t Co, int64_t K,
                                            const std::vector<double>& b, int s, int p, int op, int64_t& Ho,
                                            int64_t& Wo) {
  Ho = (H - 1) * s - 2 * p + K + op, Wo = (W - 1) * s - 2 * p + K + op;
  std::vector<double> y(N * Co * Ho * Wo, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t i = 0; i < Ho * Wo; ++i) y[(n * Co + co) * Ho * Wo + i] = b.empty() ? 0.0 : b[co];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ci = 0; ci < Ci; ++ci)
      for (int64_t ih = 0; ih < H; ++ih)
        for (int64_t iw = 0; iw < W; ++iw)
          for (int64_t co = 0; co < Co; ++co)
            for (int64_t kh = 0; kh < K; ++kh)
              for (int64_t kw = 0; kw < K; ++kw) {
                int64_t oh = ih * s - p + kh, ow = iw * s - p + kw;
                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                y[((n * Co + co) * Ho + oh) * Wo + ow] +=
                    x[((n * Ci + ci) * H + ih) * W + iw] * w[((ci * Co + co) * K + kh) * K + kw];
              }
  return y;
}

inline std::vector<double> to_double(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace ember::naive
