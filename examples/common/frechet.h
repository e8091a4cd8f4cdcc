// The Frechet distance between two Gaussians fitted to feature sets (the "FID" of Heusel et al.
// 2017 when the features are Inception's; here, the Fashion-MNIST classifier's):
//
//   d^2 = |mu1 - mu2|^2 + tr(C1) + tr(C2) - 2 tr( (C1^(1/2) C2 C1^(1/2))^(1/2) )
//
// all in double precision. The matrix square roots go through eigen-decompositions of symmetric
// matrices (cyclic Jacobi): C1^(1/2) = V sqrt(L) V^T, and M = C1^(1/2) C2 C1^(1/2) is symmetric
// positive semi-definite, so tr(M^(1/2)) is the sum of the square roots of its eigenvalues. The
// product form keeps every matrix symmetric (the often-used sqrtm(C1 C2) is of a non-symmetric
// matrix, whose square root comes back with an imaginary part to discard). Eigenvalues that
// rounding makes slightly negative are taken as 0.
#pragma once
#include <cstdint>
#include <vector>

namespace ember::data {

// The mean [d] and covariance [d, d] (row-major, divided by n - 1) of n feature vectors.
struct GaussianStats {
  int64_t d = 0, n = 0;
  std::vector<double> mean, cov;
};

// Require: features [n, d] row-major, n >= 2, d >= 1, every value finite (else an error naming it).
GaussianStats gaussian_stats(const std::vector<double>& features, int64_t n, int64_t d);

// Eigen-decomposition of a symmetric matrix a [n, n] (row-major; only symmetry is assumed) by
// cyclic Jacobi rotations: a = V diag(values) V^T, V orthonormal with eigenvectors in columns.
struct SymmetricEigen {
  std::vector<double> values;   // [n], ascending
  std::vector<double> vectors;  // [n, n], column k belongs to values[k]
};
SymmetricEigen symmetric_eigen(const std::vector<double>& a, int64_t n);

// The symmetric positive semi-definite square root of a symmetric matrix a [n, n].
std::vector<double> symmetric_sqrt(const std::vector<double>& a, int64_t n);

// d^2 above (the squared distance, as FID reports it). Require: equal d.
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

}  // namespace ember::data
