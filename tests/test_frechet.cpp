// Tests of the Frechet distance (examples/common/frechet.h): the Jacobi eigen-decomposition and
// matrix square root against their definitions, and the distance against cases whose answer is
// known in closed form (1-D Gaussians, commuting covariances in a rotated basis, 2x2
// non-commuting covariances, identical statistics). Tolerances are relative, in double.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "examples/common/frechet.h"

using namespace ember::data;

namespace {

using Matrix = std::vector<double>;  // row-major n x n

Matrix matmul(const Matrix& a, const Matrix& b, int64_t n, bool transpose_b = false) {
  Matrix c(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < n; ++j)
        c[i * n + j] += a[i * n + k] * (transpose_b ? b[j * n + k] : b[k * n + j]);
  return c;
}

double rel_diff(const Matrix& a, const Matrix& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  return std::sqrt(num / den);
}

Matrix random_matrix(int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> N(0, 1);
  Matrix m(static_cast<size_t>(n * n));
  for (double& v : m) v = N(rng);
  return m;
}

// A random orthonormal matrix by Gram-Schmidt on the rows (independent of the code under test).
Matrix random_orthonormal(int64_t n, std::mt19937_64& rng) {
  Matrix q = random_matrix(n, rng);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) {
      double dot = 0;
      for (int64_t k = 0; k < n; ++k) dot += q[i * n + k] * q[j * n + k];
      for (int64_t k = 0; k < n; ++k) q[i * n + k] -= dot * q[j * n + k];
    }
    double norm = 0;
    for (int64_t k = 0; k < n; ++k) norm += q[i * n + k] * q[i * n + k];
    for (int64_t k = 0; k < n; ++k) q[i * n + k] /= std::sqrt(norm);
  }
  return q;
}

// Q^T diag(d) Q (Q's rows are the eigenvectors).
Matrix rotated_diagonal(const Matrix& q, const std::vector<double>& d, int64_t n) {
  Matrix m(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < n; ++k) m[i * n + j] += q[k * n + i] * d[k] * q[k * n + j];
  return m;
}

GaussianStats stats_of(std::vector<double> mean, Matrix cov) {
  GaussianStats s;
  s.d = static_cast<int64_t>(mean.size());
  s.n = 1000;
  s.mean = std::move(mean);
  s.cov = std::move(cov);
  return s;
}

}  // namespace

TEST_CASE("frechet: Jacobi eigen-decomposition reconstructs a symmetric matrix", "[frechet]") {
  std::mt19937_64 rng(7);
  for (int64_t n : {1, 2, 5, 40}) {
    Matrix b = random_matrix(n, rng), a(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) a[i * n + j] = b[i * n + j] + b[j * n + i];  // symmetric, indefinite
    SymmetricEigen e = symmetric_eigen(a, n);
    Matrix vl(static_cast<size_t>(n * n)), identity(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      identity[i * n + i] = 1;
      for (int64_t k = 0; k < n; ++k) vl[i * n + k] = e.vectors[i * n + k] * e.values[k];
    }
    INFO("n = " << n);
    CHECK(rel_diff(matmul(vl, e.vectors, n, true), a) < 1e-12);  // V L V^T = A
    Matrix vt(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) vt[i * n + j] = e.vectors[j * n + i];
    CHECK(rel_diff(matmul(vt, e.vectors, n), identity) < 1e-12);  // V^T V = I
    for (int64_t k = 1; k < n; ++k) CHECK(e.values[k - 1] <= e.values[k]);
  }
}

TEST_CASE("frechet: the symmetric square root squares back to the matrix", "[frechet]") {
  std::mt19937_64 rng(11);
  const int64_t n = 30;
  Matrix b = random_matrix(n, rng);
  Matrix a = matmul(b, b, n, true);  // B B^T: positive semi-definite
  Matrix s = symmetric_sqrt(a, n);
  CHECK(rel_diff(matmul(s, s, n), a) < 1e-11);
  CHECK(rel_diff(s, matmul(s, s, n, true)) > 0);  // not a trivial identity: s is not s s^T
  // A known root: diag(4, 9, 0) rotated has root diag(2, 3, 0) rotated the same way.
  Matrix q = random_orthonormal(3, rng);
  CHECK(rel_diff(symmetric_sqrt(rotated_diagonal(q, {4, 9, 0}, 3), 3), rotated_diagonal(q, {2, 3, 0}, 3)) < 1e-12);
}

TEST_CASE("frechet: distance of 1-D Gaussians is (m1 - m2)^2 + (s1 - s2)^2", "[frechet]") {
  const double d = frechet_distance(stats_of({1.5}, {4.0}), stats_of({-0.5}, {0.25}));
  CHECK(d == Approx(4.0 + (2.0 - 0.5) * (2.0 - 0.5)).epsilon(1e-14));
}

TEST_CASE("frechet: commuting covariances in a rotated basis give the diagonal formula", "[frechet]") {
  // C1 = Q^T diag(a) Q, C2 = Q^T diag(b) Q commute: d^2 = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
  std::mt19937_64 rng(3);
  const int64_t n = 64;
  std::uniform_real_distribution<double> U(0.01, 5.0);
  for (bool singular : {false, true}) {
    std::vector<double> a(n), b(n), m1(n), m2(n);
    for (int64_t i = 0; i < n; ++i) a[i] = U(rng), b[i] = U(rng), m1[i] = U(rng), m2[i] = U(rng);
    // A singular covariance, as features that never fire give. Its zero eigenvalue comes out of
    // the rotations as +-1e-16 or so, and the square root turns that into ~1e-8: the square root
    // is not Lipschitz at 0, so there the achievable accuracy is sqrt(eps), not eps.
    if (singular) a[0] = 0;
    double want = 0;
    for (int64_t i = 0; i < n; ++i)
      want += (m1[i] - m2[i]) * (m1[i] - m2[i]) + (std::sqrt(a[i]) - std::sqrt(b[i])) * (std::sqrt(a[i]) - std::sqrt(b[i]));
    Matrix q = random_orthonormal(n, rng);
    const double got = frechet_distance(stats_of(m1, rotated_diagonal(q, a, n)), stats_of(m2, rotated_diagonal(q, b, n)));
    INFO("singular " << singular << ": got " << got << ", want " << want);
    CHECK(std::fabs(got - want) / want < (singular ? 1e-8 : 1e-11));
  }
}

TEST_CASE("frechet: non-commuting 2x2 covariances match the closed form", "[frechet]") {
  // For 2x2 positive semi-definite M: tr(M^(1/2)) = sqrt(tr M + 2 sqrt(det M)); with
  // M = C1^(1/2) C2 C1^(1/2): tr M = tr(C1 C2), det M = det C1 det C2.
  const Matrix c1 = {2.0, 0.7, 0.7, 1.0}, c2 = {0.5, -0.3, -0.3, 3.0};
  const double tr12 = c1[0] * c2[0] + c1[1] * c2[2] + c1[2] * c2[1] + c1[3] * c2[3];
  const double det1 = c1[0] * c1[3] - c1[1] * c1[2], det2 = c2[0] * c2[3] - c2[1] * c2[2];
  const double tr_sqrt = std::sqrt(tr12 + 2 * std::sqrt(det1 * det2));
  const double want = (1.0 - 0.0) * (1.0 - 0.0) + (2.0 + 1.0) * (2.0 + 1.0) + (2.0 + 1.0) + (0.5 + 3.0) - 2 * tr_sqrt;
  const double got = frechet_distance(stats_of({1.0, 2.0}, c1), stats_of({0.0, -1.0}, c2));
  CHECK(got == Approx(want).epsilon(1e-13));
  // Symmetric in its arguments although the product form is not written symmetrically.
  CHECK(frechet_distance(stats_of({0.0, -1.0}, c2), stats_of({1.0, 2.0}, c1)) == Approx(want).epsilon(1e-13));
}

TEST_CASE("frechet: identical statistics are at distance 0 and scaling features scales it by k^2", "[frechet]") {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> N(0, 1);
  const int64_t n = 300, d = 128;  // n > d: a full-rank covariance like the classifier's features
  std::vector<double> x(static_cast<size_t>(n * d)), y(x.size());
  for (double& v : x) v = std::max(0.0, N(rng));  // ReLU-like features
  for (double& v : y) v = std::max(0.0, N(rng) + 0.3);
  const GaussianStats sx = gaussian_stats(x, n, d), sy = gaussian_stats(y, n, d);
  double trace = 0;
  for (int64_t j = 0; j < d; ++j) trace += sx.cov[j * d + j];
  CHECK(std::fabs(frechet_distance(sx, sx)) < 1e-10 * trace);
  const double base = frechet_distance(sx, sy);
  CHECK(base > 0);
  for (double& v : x) v *= 3;
  for (double& v : y) v *= 3;
  CHECK(frechet_distance(gaussian_stats(x, n, d), gaussian_stats(y, n, d)) == Approx(9 * base).epsilon(1e-10));
}

TEST_CASE("frechet: sample mean and covariance (n - 1) of a small set", "[frechet]") {
  // Three 2-D points: (1, 2), (3, 6), (5, 1). Mean (3, 3); deviations (-2,-1), (0,3), (2,-2).
  const GaussianStats s = gaussian_stats({1, 2, 3, 6, 5, 1}, 3, 2);
  CHECK(s.mean == std::vector<double>{3, 3});
  CHECK(s.cov == std::vector<double>{4, -1, -1, 7});  // (4+0+4)/2, (2+0-4)/2, (1+9+4)/2
  CHECK_THROWS_WITH(gaussian_stats({1, 2, NAN, 4}, 2, 2), Catch::Contains("feature 0 of vector 1 is not finite"));
  CHECK_THROWS_WITH(gaussian_stats({1, 2}, 1, 2), Catch::Contains("n >= 2"));
  CHECK_THROWS_WITH(frechet_distance(stats_of({1.0}, {1.0}), stats_of({1.0, 2.0}, {1, 0, 0, 1})),
                    Catch::Contains("feature sizes differ"));
}
