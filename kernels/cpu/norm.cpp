// CPU reference for batch normalisation over x [N, C, *] per channel (PyTorch semantics).
// Statistics are accumulated in double, two passes (mean, then squared deviations), so the
// variance does not suffer from cancellation. One OpenMP thread per channel.
//
// With m = N * prod(*) values per channel, xhat = (x - mean) * invstd:
//   train:    mean, var = biased batch statistics; invstd = 1 / sqrt(var + eps)
//             running = (1 - momentum) * running + momentum * stat, with var * m / (m - 1) (unbiased)
//   eval:     mean, var = running statistics
//   y = gamma * xhat + beta
//   backward: dbeta = sum dy,  dgamma = sum dy * xhat,
//             dx = gamma * invstd * (dy - dbeta / m - xhat * dgamma / m)
#include <cmath>

#include "kernels/channel_layout.h"
#include "kernels/kernels.h"

namespace ember::cpu {

namespace {

// Calls f(index) for every element of channel c of x [N, C, inner].
template <class F>
void for_channel(const ChannelLayout& L, int64_t c, F f) {
  for (int64_t n = 0; n < L.N; ++n) {
    const int64_t base = (n * L.C + c) * L.inner;
    for (int64_t k = 0; k < L.inner; ++k) f(base + k);
  }
}

// y = (x - mean) * invstd * gamma + beta over channel c.
void normalise_channel(const ChannelLayout& L, int64_t c, const float* x, double mean, double invstd, double gamma,
                       double beta, float* y) {
  const double scale = invstd * gamma;
  for_channel(L, c, [&](int64_t i) { y[i] = static_cast<float>((x[i] - mean) * scale + beta); });
}

}  // namespace

void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, float momentum,
                             Tensor& running_mean, Tensor& running_var, Tensor& y, Tensor& save_mean,
                             Tensor& save_invstd) {
  const ChannelLayout L = channel_layout(x);
  const double m = static_cast<double>(L.count());
  const float *px = x.data(), *pg = gamma.data(), *pb = beta.data();
  float *py = y.data(), *prm = running_mean.data(), *prv = running_var.data();
  float *psm = save_mean.data(), *psi = save_invstd.data();
#pragma omp parallel for if (x.numel() > 32768)
  for (int64_t c = 0; c < L.C; ++c) {
    double sum = 0;
    for_channel(L, c, [&](int64_t i) { sum += px[i]; });
    const double mean = sum / m;
    double sq = 0;
    for_channel(L, c, [&](int64_t i) { sq += (px[i] - mean) * (px[i] - mean); });
    const double var = sq / m;  // biased: what the batch is normalised with
    const double invstd = 1.0 / std::sqrt(var + eps);
    normalise_channel(L, c, px, mean, invstd, pg[c], pb[c], py);
    psm[c] = static_cast<float>(mean);
    psi[c] = static_cast<float>(invstd);
    const double unbiased = m > 1 ? var * m / (m - 1) : var;
    prm[c] = static_cast<float>((1.0 - momentum) * prm[c] + momentum * mean);
    prv[c] = static_cast<float>((1.0 - momentum) * prv[c] + momentum * unbiased);
  }
}

void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                            const Tensor& running_var, float eps, Tensor& y) {
  const ChannelLayout L = channel_layout(x);
  const float *px = x.data(), *pg = gamma.data(), *pb = beta.data();
  const float *prm = running_mean.data(), *prv = running_var.data();
  float* py = y.data();
#pragma omp parallel for if (x.numel() > 32768)
  for (int64_t c = 0; c < L.C; ++c)
    normalise_channel(L, c, px, prm[c], 1.0 / std::sqrt(static_cast<double>(prv[c]) + eps), pg[c], pb[c], py);
}

void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& save_mean,
                        const Tensor& save_invstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const ChannelLayout L = channel_layout(x);
  const double m = static_cast<double>(L.count());
  const float *px = x.data(), *pdy = dy.data(), *pg = gamma.data(), *psm = save_mean.data(), *psi = save_invstd.data();
  float *pdx = dx.data(), *pdg = dgamma.data(), *pdb = dbeta.data();
#pragma omp parallel for if (x.numel() > 32768)
  for (int64_t c = 0; c < L.C; ++c) {
    const double mean = psm[c], invstd = psi[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    for_channel(L, c, [&](int64_t i) {
      sum_dy += pdy[i];
      sum_dy_xhat += pdy[i] * (px[i] - mean) * invstd;
    });
    pdb[c] = static_cast<float>(sum_dy);
    pdg[c] = static_cast<float>(sum_dy_xhat);
    const double k = pg[c] * invstd;
    for_channel(L, c, [&](int64_t i) {
      const double xhat = (px[i] - mean) * invstd;
      pdx[i] = static_cast<float>(k * (pdy[i] - sum_dy / m - xhat * sum_dy_xhat / m));
    });
  }
}

}  // namespace ember::cpu
