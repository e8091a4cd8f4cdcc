// CPU reference for spectral normalisation by power iteration (kernels/spectral_norm.inc),
// with torch.nn.utils.spectral_norm's semantics. The weight is viewed as the matrix Wm of
// kernels/spectral_norm_layout.h; every loop walks w in memory order and accumulates in double.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/spectral_norm_layout.h"

namespace ember::cpu {

namespace {

// Calls f(r, c, e) for every entry Wm[r][c] = w[e], e running through w in memory order.
template <class F>
void for_each_entry(const SnLayout& l, F&& f) {
  int64_t e = 0;
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t r = 0; r < l.rows; ++r)
      for (int64_t k = 0; k < l.inner; ++k, ++e) f(r, o * l.inner + k, e);
}

// Wm x for x [cols] -> [rows], in double.
std::vector<double> mat_vec(const SnLayout& l, const float* w, const float* x) {
  std::vector<double> y(l.rows, 0.0);
  for_each_entry(l, [&](int64_t r, int64_t c, int64_t e) { y[r] += static_cast<double>(w[e]) * x[c]; });
  return y;
}

// Wm^T x for x [rows] -> [cols], in double.
std::vector<double> mat_t_vec(const SnLayout& l, const float* w, const float* x) {
  std::vector<double> y(l.cols(), 0.0);
  for_each_entry(l, [&](int64_t r, int64_t c, int64_t e) { y[c] += static_cast<double>(w[e]) * x[r]; });
  return y;
}

// out = a / max(||a||, eps), rounded to float (the buffers are float, as in PyTorch).
void normalize_into(const std::vector<double>& a, float eps, float* out) {
  double ss = 0;
  for (double x : a) ss += x * x;
  const double n = std::max(std::sqrt(ss), static_cast<double>(eps));
  for (size_t i = 0; i < a.size(); ++i) out[i] = static_cast<float>(a[i] / n);
}

double dot(const float* a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < b.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

void spectral_norm_power_iteration(const Tensor& w, int dim, float eps, Tensor& u, Tensor& v, Tensor& sigma) {
  const SnLayout l = sn_layout(w.shape(), dim);
  const float* pw = w.data();  // Wm (rows, cols) in the layout's view
  float* pu = u.data();        // (rows)
  float* pv = v.data();        // (cols)
  normalize_into(mat_t_vec(l, pw, pu), eps, pv);  // v = normalize(Wm^T u)
  const std::vector<double> t = mat_vec(l, pw, pv);  // Wm v, computed from the stored (float) v
  normalize_into(t, eps, pu);                         // u = normalize(Wm v)
  // sigma = u . (Wm v): PyTorch computes it from the new float u and a fresh Wm v, which is
  // the same vector t here.
  sigma.data()[0] = static_cast<float>(dot(pu, t));
}

void spectral_norm_sigma(const Tensor& w, int dim, const Tensor& u, const Tensor& v, Tensor& sigma) {
  const SnLayout l = sn_layout(w.shape(), dim);
  sigma.data()[0] = static_cast<float>(dot(u.data(), mat_vec(l, w.data(), v.data())));
}

void spectral_norm_step_group(const std::vector<SnStepItem>& items, bool training) {
  for (const SnStepItem& it : items) {
    Tensor u = it.u, v = it.v, sigma = it.sigma;  // handles: the writes reach the items' storage
    if (training) {
      spectral_norm_power_iteration(it.w, it.dim, it.eps, u, v, sigma);
    } else {
      spectral_norm_sigma(it.w, it.dim, it.u, it.v, sigma);
    }
  }
}

void spectral_norm_scale(const Tensor& w, const Tensor& sigma, Tensor& w_sn) {
  const float s = sigma.data()[0];
  const float* pw = w.data();
  float* po = w_sn.data();
  const int64_t n = w.numel();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) po[i] = pw[i] / s;
}

void spectral_norm_backward(const Tensor& w, int dim, const Tensor& u, const Tensor& v, const Tensor& sigma,
                            const Tensor& g, Tensor& dw) {
  const SnLayout l = sn_layout(w.shape(), dim);
  const float* pw = w.data();
  const float* pg = g.data();  // dL/dw_sn, same layout as w
  const float* pu = u.data();
  const float* pv = v.data();
  float* pdw = dw.data();
  const double s = sigma.data()[0];
  // w_sn = Wm / sigma with sigma = u^T Wm v, so d sigma / d Wm = u v^T and
  // dL/dWm = G / sigma - <G, Wm> / sigma^2 u v^T = (G - <G, W_sn> u v^T) / sigma.
  double gw = 0;
  for (int64_t e = 0; e < w.numel(); ++e) gw += static_cast<double>(pg[e]) * pw[e];
  const double g_wsn = gw / s;
  for_each_entry(l, [&](int64_t r, int64_t c, int64_t e) {
    pdw[e] = static_cast<float>((pg[e] - g_wsn * pu[r] * pv[c]) / s);
  });
}

}  // namespace ember::cpu
