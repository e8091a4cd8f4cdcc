// CPU reference for softmax over the last dimension (kernels/softmax.inc): x viewed as
// [rows, cols], each row handled on its own. Sums are kept in double so the reference is
// exact to float whatever the row length.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/kernels.h"

namespace ember::cpu {

namespace {

// The row length: the last dimension (a rank-0 tensor is one row of one element).
int64_t last_dim(const Tensor& t) { return t.dim() == 0 ? 1 : t.size(t.dim() - 1); }

}  // namespace

void softmax_forward(const Tensor& x, Tensor& y) {
  const int64_t cols = last_dim(x);
  if (cols == 0 || x.numel() == 0) return;
  const int64_t rows = x.numel() / cols;
  const float* px = x.data();  // (rows, cols)
  float* py = y.data();        // (rows, cols)
#pragma omp parallel for if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * cols;
    float* yr = py + r * cols;
    // Subtracting the row max keeps every exp() in (0, 1]: no overflow for any finite input.
    // -inf entries then give exp(-inf) = 0; a row that is all -inf has max -inf and
    // (-inf) - (-inf) = NaN everywhere, which is PyTorch's answer too.
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < cols; ++c) m = std::max(m, xr[c]);
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) {
      float e = std::exp(xr[c] - m);
      yr[c] = e;
      s += e;
    }
    const double inv = 1.0 / s;
    for (int64_t c = 0; c < cols; ++c) yr[c] = static_cast<float>(yr[c] * inv);
  }
}

void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const int64_t cols = last_dim(y);
  if (cols == 0 || y.numel() == 0) return;
  const int64_t rows = y.numel() / cols;
  const float* py = y.data();    // (rows, cols)
  const float* pdy = dy.data();  // (rows, cols)
  float* pdx = dx.data();        // (rows, cols)
#pragma omp parallel for if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const float* yr = py + r * cols;
    const float* dyr = pdy + r * cols;
    float* dxr = pdx + r * cols;
    // The Jacobian of softmax is diag(y) - y y^T, so J^T dy = y * (dy - <y, dy>).
    double dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(yr[c]) * dyr[c];
    for (int64_t c = 0; c < cols; ++c) dxr[c] = static_cast<float>(yr[c] * (dyr[c] - dot));
  }
}

}  // namespace ember::cpu
