// CPU reference for batch normalisation over x [N, C, *] per channel (PyTorch semantics).
// Statistics are accumulated in double, per [inner] row in two passes (mean, then squared
// deviations: the row is in L1 for the second), rows merged with Chan et al.'s update, so the
// variance does not suffer from cancellation and each channel is read from memory once for its
// statistics. Channels are split over the OpenMP threads; rows run vectorised (vector_loops.h),
// the arithmetic in double as before.
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
#include "kernels/cpu/vector_loops.h"
#include "kernels/kernels.h"

namespace ember::cpu {

namespace {

// Calls f(row) for each [inner] row of channel c of x [N, C, inner] (row: its offset in x).
template <class F>
void for_channel_rows(const ChannelLayout& L, int64_t c, F f) {
  for (int64_t n = 0; n < L.N; ++n) f((n * L.C + c) * L.inner);
}

// Calls f(c) for each channel, channels split over the threads (serial for small x), vectorised.
template <class F>
void for_each_channel(const ChannelLayout& L, F f) {
  parallel_ranges(
      L.C,
      [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) f(c);
      },
      L.N * L.C * L.inner);
}

// Count, mean and sum of squared deviations from the mean of the values added so far.
struct Moments {
  double count = 0, mean = 0, m2 = 0;
  // Adds x[0, n): exact statistics of the row, then merged (Chan, Golub and LeVeque).
  void add_row(const float* x, int64_t n) {
    const double row_mean = sum_double(x, n) / n;
    const double row_m2 = lane_sum(n, [=](int64_t i) {
      const double d = x[i] - row_mean;
      return d * d;
    });
    const double total = count + n, delta = row_mean - mean;
    mean += delta * n / total;
    m2 += row_m2 + delta * delta * count * n / total;
    count = total;
  }
};

// y = (x - mean) * invstd * gamma + beta over channel c.
void normalise_channel(const ChannelLayout& L, int64_t c, const float* x, double mean, double invstd, double gamma,
                       double beta, float* y) {
  const double scale = invstd * gamma;
  const int64_t inner = L.inner;
  for_channel_rows(L, c, [&](int64_t row) {
    for (int64_t k = 0; k < inner; ++k) y[row + k] = static_cast<float>((x[row + k] - mean) * scale + beta);
  });
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
  for_each_channel(L, [&](int64_t c) {
    Moments mo;
    for_channel_rows(L, c, [&](int64_t row) { mo.add_row(px + row, L.inner); });
    const double mean = mo.mean;
    const double var = mo.m2 / m;  // biased: what the batch is normalised with
    const double invstd = 1.0 / std::sqrt(var + eps);
    normalise_channel(L, c, px, mean, invstd, pg[c], pb[c], py);
    psm[c] = static_cast<float>(mean);
    psi[c] = static_cast<float>(invstd);
    const double unbiased = m > 1 ? var * m / (m - 1) : var;
    prm[c] = static_cast<float>((1.0 - momentum) * prm[c] + momentum * mean);
    prv[c] = static_cast<float>((1.0 - momentum) * prv[c] + momentum * unbiased);
  });
}

void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                            const Tensor& running_var, float eps, Tensor& y) {
  const ChannelLayout L = channel_layout(x);
  const float *px = x.data(), *pg = gamma.data(), *pb = beta.data();
  const float *prm = running_mean.data(), *prv = running_var.data();
  float* py = y.data();
  for_each_channel(L, [&](int64_t c) {
    normalise_channel(L, c, px, prm[c], 1.0 / std::sqrt(static_cast<double>(prv[c]) + eps), pg[c], pb[c], py);
  });
}

void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& save_mean,
                        const Tensor& save_invstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const ChannelLayout L = channel_layout(x);
  const double m = static_cast<double>(L.count());
  const float *px = x.data(), *pdy = dy.data(), *pg = gamma.data(), *psm = save_mean.data(), *psi = save_invstd.data();
  float *pdx = dx.data(), *pdg = dgamma.data(), *pdb = dbeta.data();
  const int64_t inner = L.inner;
  for_each_channel(L, [&](int64_t c) {
    const double mean = psm[c], invstd = psi[c];
    double sum_dy = 0, sum_dy_xc = 0;  // sum dy, sum dy * (x - mean)
    for_channel_rows(L, c, [&](int64_t row) {
      const float *xr = px + row, *dyr = pdy + row;
      sum_dy += sum_double(dyr, inner);
      sum_dy_xc += lane_sum(inner, [=](int64_t k) { return dyr[k] * (xr[k] - mean); });
    });
    const double sum_dy_xhat = sum_dy_xc * invstd;
    pdb[c] = static_cast<float>(sum_dy);
    pdg[c] = static_cast<float>(sum_dy_xhat);
    const double k = pg[c] * invstd, mean_dy = sum_dy / m, mean_dy_xhat = sum_dy_xhat / m;
    for_channel_rows(L, c, [&](int64_t row) {
      for (int64_t i = row; i < row + inner; ++i) {
        const double xhat = (px[i] - mean) * invstd;
        pdx[i] = static_cast<float>(k * (pdy[i] - mean_dy - xhat * mean_dy_xhat));
      }
    });
  });
}

}  // namespace ember::cpu
