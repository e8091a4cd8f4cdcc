// The Frechet distance in double precision (see frechet.h).
#include "examples/common/frechet.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace ember::data {

GaussianStats gaussian_stats(const std::vector<double>& features, int64_t n, int64_t d) {
  EMBER_CHECK(n >= 2 && d >= 1, "gaussian_stats: need n >= 2 vectors of d >= 1 features, got n " << n << ", d " << d);
  EMBER_CHECK(static_cast<int64_t>(features.size()) == n * d,
              "gaussian_stats: " << features.size() << " values are not n " << n << " x d " << d);
  GaussianStats s;
  s.n = n, s.d = d;
  s.mean.assign(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      const double v = features[static_cast<size_t>(i * d + j)];
      EMBER_CHECK(std::isfinite(v), "gaussian_stats: feature " << j << " of vector " << i << " is not finite (" << v << ")");
      s.mean[static_cast<size_t>(j)] += v;
    }
  for (double& m : s.mean) m /= static_cast<double>(n);
  // Two passes (centre, then multiply): no cancellation between E[xx] and mu mu^T.
  s.cov.assign(static_cast<size_t>(d * d), 0.0);
  std::vector<double> c(static_cast<size_t>(d));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) c[static_cast<size_t>(j)] = features[static_cast<size_t>(i * d + j)] - s.mean[static_cast<size_t>(j)];
    for (int64_t j = 0; j < d; ++j)
      for (int64_t k = j; k < d; ++k) s.cov[static_cast<size_t>(j * d + k)] += c[static_cast<size_t>(j)] * c[static_cast<size_t>(k)];
  }
  for (int64_t j = 0; j < d; ++j)
    for (int64_t k = j; k < d; ++k) {
      const double v = s.cov[static_cast<size_t>(j * d + k)] / static_cast<double>(n - 1);
      s.cov[static_cast<size_t>(j * d + k)] = s.cov[static_cast<size_t>(k * d + j)] = v;
    }
  return s;
}

SymmetricEigen symmetric_eigen(const std::vector<double>& input, int64_t n) {
  EMBER_CHECK(n >= 1 && static_cast<int64_t>(input.size()) == n * n,
              "symmetric_eigen: expected an n x n matrix, n " << n << ", got " << input.size() << " values");
  auto at = [n](std::vector<double>& m, int64_t r, int64_t c) -> double& { return m[static_cast<size_t>(r * n + c)]; };
  std::vector<double> a = input, v(static_cast<size_t>(n * n), 0.0);
  double scale = 0;
  for (int64_t r = 0; r < n; ++r) {
    at(v, r, r) = 1.0;
    for (int64_t c = 0; c < n; ++c) {
      EMBER_CHECK(std::isfinite(at(a, r, c)), "symmetric_eigen: entry (" << r << ", " << c << ") is not finite");
      scale = std::max(scale, std::fabs(at(a, r, c)));
    }
  }
  // Each sweep zeroes every off-diagonal pair once (a rotation in the (p, q) plane); the
  // off-diagonal mass falls quadratically once small. Stop when it is negligible against the
  // largest entry; 100 sweeps is far beyond what any symmetric matrix needs (typically 6-10).
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off += at(a, p, q) * at(a, p, q);
    if (off <= 1e-30 * scale * scale * static_cast<double>(n * n) || off == 0) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = at(a, p, q);
        if (apq == 0) continue;
        // The rotation angle that zeroes a_pq: t = tan(theta), the smaller root (stable).
        const double theta = (at(a, q, q) - at(a, p, p)) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // columns p, q of a (a <- a J)
          const double akp = at(a, k, p), akq = at(a, k, q);
          at(a, k, p) = c * akp - s * akq;
          at(a, k, q) = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {  // rows p, q (a <- J^T a)
          const double apk = at(a, p, k), aqk = at(a, q, k);
          at(a, p, k) = c * apk - s * aqk;
          at(a, q, k) = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < n; ++k) {  // accumulate V <- V J
          const double vkp = at(v, k, p), vkq = at(v, k, q);
          at(v, k, p) = c * vkp - s * vkq;
          at(v, k, q) = s * vkp + c * vkq;
        }
      }
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return at(a, x, x) < at(a, y, y); });
  SymmetricEigen e;
  e.values.resize(static_cast<size_t>(n));
  e.vectors.resize(static_cast<size_t>(n * n));
  for (int64_t k = 0; k < n; ++k) {
    const int64_t src = order[static_cast<size_t>(k)];
    e.values[static_cast<size_t>(k)] = at(a, src, src);
    for (int64_t r = 0; r < n; ++r) e.vectors[static_cast<size_t>(r * n + k)] = at(v, r, src);
  }
  return e;
}

std::vector<double> symmetric_sqrt(const std::vector<double>& a, int64_t n) {
  const SymmetricEigen e = symmetric_eigen(a, n);
  std::vector<double> out(static_cast<size_t>(n * n), 0.0);
  for (int64_t k = 0; k < n; ++k) {
    const double root = std::sqrt(std::max(0.0, e.values[static_cast<size_t>(k)]));
    if (root == 0) continue;
    for (int64_t r = 0; r < n; ++r) {
      const double vr = root * e.vectors[static_cast<size_t>(r * n + k)];
      for (int64_t c = 0; c < n; ++c) out[static_cast<size_t>(r * n + c)] += vr * e.vectors[static_cast<size_t>(c * n + k)];
    }
  }
  return out;
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  EMBER_CHECK(a.d == b.d && a.d >= 1, "frechet_distance: feature sizes differ (" << a.d << " and " << b.d << ")");
  const int64_t d = a.d;
  const size_t dd = static_cast<size_t>(d * d);
  EMBER_CHECK(a.mean.size() == static_cast<size_t>(d) && b.mean.size() == static_cast<size_t>(d) && a.cov.size() == dd &&
                  b.cov.size() == dd,
              "frechet_distance: statistics of the wrong size");
  double mean_term = 0, trace = 0;
  for (int64_t j = 0; j < d; ++j) {
    const double diff = a.mean[static_cast<size_t>(j)] - b.mean[static_cast<size_t>(j)];
    mean_term += diff * diff;
    trace += a.cov[static_cast<size_t>(j * d + j)] + b.cov[static_cast<size_t>(j * d + j)];
  }
  // M = S C2 S with S = C1^(1/2): two products of d x d matrices.
  const std::vector<double> s = symmetric_sqrt(a.cov, d);
  std::vector<double> t(dd, 0.0), m(dd, 0.0);
  for (int64_t r = 0; r < d; ++r)
    for (int64_t k = 0; k < d; ++k) {
      const double srk = s[static_cast<size_t>(r * d + k)];
      for (int64_t c = 0; c < d; ++c) t[static_cast<size_t>(r * d + c)] += srk * b.cov[static_cast<size_t>(k * d + c)];
    }
  for (int64_t r = 0; r < d; ++r)
    for (int64_t k = 0; k < d; ++k) {
      const double trk = t[static_cast<size_t>(r * d + k)];
      for (int64_t c = 0; c < d; ++c) m[static_cast<size_t>(r * d + c)] += trk * s[static_cast<size_t>(k * d + c)];
    }
  for (int64_t r = 0; r < d; ++r)  // symmetrise away the rounding of the two products
    for (int64_t c = r + 1; c < d; ++c) {
      const double v = 0.5 * (m[static_cast<size_t>(r * d + c)] + m[static_cast<size_t>(c * d + r)]);
      m[static_cast<size_t>(r * d + c)] = m[static_cast<size_t>(c * d + r)] = v;
    }
  double trace_sqrt = 0;
  for (double ev : symmetric_eigen(m, d).values) trace_sqrt += std::sqrt(std::max(0.0, ev));
  return mean_term + trace - 2 * trace_sqrt;
}

}  // namespace ember::data
