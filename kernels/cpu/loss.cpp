// CPU reference for the loss family: hinge, binary cross-entropy with logits and
// cross-entropy over classes. Each forward is a mean over elements (rows for cross-entropy)
// accumulated in double; each backward scales by dloss[0] / count, read from the tensor.
#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"

namespace ember::cpu {

namespace {
// log(1 + exp(-|x|)) + max(x, 0) - x*t: exp never overflows, log1p keeps precision near 0.
inline double bce_term(double x, double t) { return std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::abs(x))); }

// Sigmoid with two branches so exp never overflows.
inline float stable_sigmoid(float v) {
  return v >= 0 ? 1.0f / (1.0f + std::exp(-v)) : std::exp(v) / (1.0f + std::exp(v));
}

// log(sum_k exp(row[k])), shifted by the row maximum so no term overflows.
inline double logsumexp(const float* row, int64_t K) {
  float m = row[0];
  for (int64_t k = 1; k < K; ++k) m = std::max(m, row[k]);
  double s = 0;
  for (int64_t k = 0; k < K; ++k) s += std::exp(static_cast<double>(row[k]) - m);
  return m + std::log(s);
}
}  // namespace

void hinge_forward(const Tensor& x, float sign, Tensor& loss) {
  const float* px = x.data();
  const int64_t n = x.numel();
  double s = 0;
#pragma omp parallel for reduction(+ : s) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    const double m = 1.0 - static_cast<double>(sign) * px[i];
    s += m <= 0 ? 0.0 : m;  // relu(m) that keeps a NaN (std::max(0.0, NaN) is 0)
  }
  loss.data()[0] = static_cast<float>(s / static_cast<double>(n));
}

void hinge_backward(const Tensor& x, float sign, const Tensor& dloss, Tensor& dx) {
  const float* px = x.data();
  float* pdx = dx.data();
  const int64_t n = x.numel();
  const float g = -sign * dloss.data()[0] / static_cast<float>(n);
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) pdx[i] = 1.0f - sign * px[i] <= 0.0f ? 0.0f : g;  // passes at a NaN, as relu's
}

void bce_logits_forward(const Tensor& x, const Tensor& target, Tensor& loss) {
  const float *px = x.data(), *pt = target.data();
  const int64_t n = x.numel();
  double s = 0;
#pragma omp parallel for reduction(+ : s) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) s += bce_term(px[i], pt[i]);
  loss.data()[0] = static_cast<float>(s / static_cast<double>(n));
}

void bce_logits_backward(const Tensor& x, const Tensor& target, const Tensor& dloss, Tensor& dx) {
  const float *px = x.data(), *pt = target.data();
  float* pdx = dx.data();
  const int64_t n = x.numel();
  const float g = dloss.data()[0] / static_cast<float>(n);
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) pdx[i] = g * (stable_sigmoid(px[i]) - pt[i]);
}

void cross_entropy_forward(const Tensor& logits, const Tensor& labels, Tensor& loss) {
  const int64_t N = logits.size(0), K = logits.size(1);
  const float *pl = logits.data(), *py = labels.data();
  double s = 0;
#pragma omp parallel for reduction(+ : s) if (N * K > 32768)
  for (int64_t r = 0; r < N; ++r) {
    const float* row = pl + r * K;
    s += logsumexp(row, K) - row[static_cast<int64_t>(py[r])];
  }
  loss.data()[0] = static_cast<float>(s / static_cast<double>(N));
}

void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& dloss, Tensor& dlogits) {
  const int64_t N = logits.size(0), K = logits.size(1);
  const float *pl = logits.data(), *py = labels.data();
  float* pd = dlogits.data();
  const double g = static_cast<double>(dloss.data()[0]) / static_cast<double>(N);
#pragma omp parallel for if (N * K > 32768)
  for (int64_t r = 0; r < N; ++r) {
    const float* row = pl + r * K;
    const double lse = logsumexp(row, K);
    const int64_t label = static_cast<int64_t>(py[r]);
    // d/dlogit_k = softmax_k - [k == label]
    for (int64_t k = 0; k < K; ++k)
      pd[r * K + k] = static_cast<float>(g * (std::exp(row[k] - lse) - (k == label ? 1.0 : 0.0)));
  }
}

}  // namespace ember::cpu
