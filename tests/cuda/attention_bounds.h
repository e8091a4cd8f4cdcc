// Error bounds for the fused CUDA attention (kernels/cuda/attention.cu), derived from the arithmetic
// of each variant and computed from the actual tensors of a test case. tests/cuda/test_attention.cpp
// checks ||gpu - ref|| <= bound (Frobenius) for o, lse, dq, dk and dv. The bound is absolute, so an
// output whose exact value is 0 (dq and dk when M = 1: p = 1 and dP = D, hence dS = 0) is judged by
// the scale of the inputs, not by a relative error of rounding noise against rounding noise.
//
// ROUNDING OF ONE PRODUCT. u = 2^-24. A variant is three numbers (AttentionPrecision):
//   op   relative error of one operand as the product sees it: fp32 FMA 0; TF32 (cvt.rna to 10
//        mantissa bits) 2^-11; 3xTF32 (hi*hi + hi*lo + lo*hi) 1.5 * 2^-22: the dropped lo*lo and
//        the rounding of lo are each <= 2^-22 |a b|, 3 * 2^-22 per product in all;
//   acc  one accumulation step: u for FMA, 2u on tensor cores (fp32 accumulation there is not
//        guaranteed to round to nearest).
// The score product q.k has its own op_s (Tf32 computes S in 3xTF32, the rest in 1xTF32). For an
// output x = sum_k a_k b_k the rounding errors are taken as independent, zero-mean and bounded (the
// model of Higham & Mary, "A new approach to probabilistic rounding error analysis", SISC 2019):
// they add in quadrature, so   dx ~ (sqrt(2) op + sqrt(K) acc) sqrt(sum_k a_k^2 b_k^2),
// and a bound is lambda times the root-sum-square (lambda = 4 here; Hoeffding gives
// P(|dx| > lambda sigma) <= 2 exp(-lambda^2 / 2) for one sum, and Frobenius norms over many outputs
// concentrate far better). Worst-case bounds (sum_k |a_k b_k| instead) are ~sqrt(K) looser and
// would let an indexing error through, so they are not used.
//
// THE CHAIN (per batch; columns q_i, k_j, v_j, g_i = dO_i, o_i; p_ij = exp(s_ij - lse_i)):
//   s_ij = q_i.k_j          ds_ij ~ aS |q_i||k_j|,  aS = sqrt(2) op_s + sqrt(dk) acc.
//   lse_i                   dlse_i ~ lambda (aS sqrt(sum_j p_ij^2 |q_i|^2 |k_j|^2) + sqrt(M) acc) + 4u (|lse_i| + 1)
//                           (lse moves by sum_j p_ij ds_ij; the sum l of M exponentials; log).
//   o_i = sum_j p_ij v_j    |do_i|^2 ~ aB^2 sum_j p_ij^2 |v_j|^2 + aS^2 sum_j p_ij^2 |q_i|^2 |k_j|^2 (|v_j| + |o_i|)^2,
//                           aB = sqrt(2) op + sqrt(M) acc; the second term is the score error
//                           through the softmax (dp_ij = p_ij (ds_ij - sum_l p_il ds_il), so
//                           do_i = sum_j p_ij ds_ij (v_j - o_i)); exp2, scale, divide add 4u |o_i|.
//                           eps_i = lambda sqrt(that) + 4u |o_i| is the row's error, used below.
//   The backward starts from the GPU's o and lse, the reference from exact ones:
//   p_ij recomputed         dp_ij / p_ij ~ eta_ij = sqrt(aS^2 |q_i|^2 |k_j|^2 + dlse_i^2) + 2u.
//   dv_j = sum_i p_ij g_i   |ddv|^2 ~ sum_ij p_ij^2 |g_i|^2 (aV^2 + eta_ij^2),  aV = sqrt(2) op + sqrt(N) acc.
//   D_i = g_i.o_i (fp32)    dD_i ~ |g_i|_inf eps_i + sqrt(dv) u |g_i||o_i|  (the same for every j: coherent).
//   dP_ij = g_i.v_j         ddP_ij ~ aP sqrt(sum_c g_ci^2 v_cj^2),  aP = sqrt(2) op + sqrt(dv) acc.
//   dS_ij = p_ij (dP_ij - D_i)   its independent part: sigma_ij^2 = p_ij^2 (eta_ij^2 (dP_ij - D_i)^2 + ddP_ij^2).
//   dq_i = sum_j dS_ij k_j  |ddq_i|^2 ~ sum_j (sigma_ij^2 + aQ^2 dS_ij^2) |k_j|^2 + dD_i^2 |sum_j p_ij k_j|^2,
//                           aQ = sqrt(2) op + sqrt(M) acc.
//   dk_j = sum_i dS_ij q_i  |ddk_j|^2 ~ sum_i (sigma_ij^2 + p_ij^2 dD_i^2 + aK^2 dS_ij^2) |q_i|^2,
//                           aK = sqrt(2) op + sqrt(N) acc.
// Each bound is lambda times the root of its sum, plus u ||ref|| for the rounding of the float
// reference itself. When M = 1 only sigma (from ddP) and dD remain in dq and dk: noise of about
// op |g||v||k|, 2^-11 relative to the inputs in TF32, which is what the kernels return there.
// COST: the sums need s_ij, dP_ij and sum_c g_ci^2 v_cj^2 for every pair, M (dk + 2 dv) per query
// row. Every term is a sum over rows i, so for N > 128 they are estimated from 128 rows per batch
// spread evenly over N and scaled by N / 128 (inputs are i.i.d. random, so the estimate is close).
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/tensor.h"

namespace ember::test {

// The rounding of one variant (see above). All in units of relative error.
struct AttentionPrecision {
  double op_s;  // operand rounding of the score product q . k
  double op_b;  // operand rounding of the products with P, dS, v and dO
  double acc;   // one accumulation step
};

constexpr double kU = 1.0 / (1 << 24);                    // fp32 unit roundoff
constexpr double kTf32Op = 1.0 / (1 << 11);               // TF32 operand (10 mantissa bits, rna)
constexpr double kTf32x3Op = 1.5 / (1 << 22);             // 3xTF32: 3 * 2^-22 per product
constexpr AttentionPrecision kPrecSimt{0, 0, kU};          // fp32 FMA throughout
constexpr AttentionPrecision kPrecTf32{kTf32x3Op, kTf32Op, 2 * kU};    // S in 3xTF32, the rest 1xTF32
constexpr AttentionPrecision kPrecTf32x3{kTf32x3Op, kTf32x3Op, 2 * kU};

struct AttentionBounds {
  double o, lse, dq, dk, dv;  // absolute bounds on ||gpu - ref|| (Frobenius)
};

namespace detail {
inline double frobenius(const Tensor& x) {
  double s = 0;
  for (float e : x.to_vector()) s += double(e) * e;
  return std::sqrt(s);
}
// max_i |x[b, :, i]| over all batches of a [B, rows, cols] tensor: the largest column 2-norm.
inline double max_column_norm(const Tensor& x) {
  const int64_t B = x.size(0), R = x.size(1), C = x.size(2);
  const std::vector<float> h = x.to_vector();
  double best = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      double s = 0;
      for (int64_t r = 0; r < R; ++r) s += double(h[(b * R + r) * C + c]) * h[(b * R + r) * C + c];
      best = std::max(best, s);
    }
  return std::sqrt(best);
}
constexpr double kLambda = 4;
constexpr int64_t kSampleRows = 128;
}  // namespace detail

// Bounds for one case, one per precision in `precs` (the expensive sums are shared): q [B, dk, N],
// k [B, dk, M], v [B, dv, M], g = dO [B, dv, N]; lse, o, dq, dk, dv the reference's outputs.
inline std::vector<AttentionBounds> attention_bounds(const std::vector<AttentionPrecision>& precs, const Tensor& q,
                                                     const Tensor& k, const Tensor& v, const Tensor& g,
                                                     const Tensor& lse, const Tensor& ref_o, const Tensor& ref_dq,
                                                     const Tensor& ref_dk, const Tensor& ref_dv) {
  using std::sqrt;
  const double u = kU, lam = detail::kLambda;
  const int64_t B = q.size(0), dk = q.size(1), N = q.size(2), M = k.size(2), dv = v.size(1);
  const std::vector<float> hq = q.to_vector(), hk = k.to_vector(), hv = v.to_vector(), hg = g.to_vector(),
                           hl = lse.to_vector(), ho = ref_o.to_vector();
  const int64_t rows = std::min(N, detail::kSampleRows);
  const double scale = double(N) / double(rows);

  struct Sums {
    double o2 = 0, lse2 = 0, dv2 = 0, dq2 = 0, dk2 = 0;
  };
  std::vector<Sums> sums(precs.size());
  std::vector<double> k2(M), v2(M), s(M), p(M), dP(M), w2(M), kbar(dk);
  for (int64_t b = 0; b < B; ++b) {
    const float* kb = hk.data() + b * dk * M;
    const float* vb = hv.data() + b * dv * M;
    std::fill(k2.begin(), k2.end(), 0.0);
    std::fill(v2.begin(), v2.end(), 0.0);
    for (int64_t c = 0; c < dk; ++c)
      for (int64_t j = 0; j < M; ++j) k2[j] += double(kb[c * M + j]) * kb[c * M + j];
    for (int64_t c = 0; c < dv; ++c)
      for (int64_t j = 0; j < M; ++j) v2[j] += double(vb[c * M + j]) * vb[c * M + j];
    for (int64_t r = 0; r < rows; ++r) {
      // The row's exact quantities: s_ij, p_ij, dP_ij, sum_c g_ci^2 v_cj^2, D_i, sum_j p_ij k_j.
      const int64_t i = r * N / rows;
      std::fill(s.begin(), s.end(), 0.0);
      std::fill(dP.begin(), dP.end(), 0.0);
      std::fill(w2.begin(), w2.end(), 0.0);
      std::fill(kbar.begin(), kbar.end(), 0.0);
      double q2 = 0, g2 = 0, ginf = 0, o2i = 0, D = 0;
      for (int64_t c = 0; c < dk; ++c) {
        const double qc = hq[(b * dk + c) * N + i];
        q2 += qc * qc;
        for (int64_t j = 0; j < M; ++j) s[j] += qc * kb[c * M + j];
      }
      for (int64_t c = 0; c < dv; ++c) {
        const double gc = hg[(b * dv + c) * N + i], oc = ho[(b * dv + c) * N + i];
        g2 += gc * gc, o2i += oc * oc, D += gc * oc;
        ginf = std::max(ginf, std::fabs(gc));
        for (int64_t j = 0; j < M; ++j) {
          const double vc = vb[c * M + j];
          dP[j] += gc * vc;
          w2[j] += gc * gc * vc * vc;
        }
      }
      const double li = hl[b * N + i], on = sqrt(o2i);
      for (int64_t j = 0; j < M; ++j) p[j] = std::exp(s[j] - li);
      for (int64_t c = 0; c < dk; ++c)
        for (int64_t j = 0; j < M; ++j) kbar[c] += p[j] * kb[c * M + j];
      double kbar2 = 0;
      for (double x : kbar) kbar2 += x * x;

      for (size_t t = 0; t < precs.size(); ++t) {
        const AttentionPrecision& pr = precs[t];
        Sums& z = sums[t];
        const double aS = sqrt(2.0) * pr.op_s + sqrt(double(dk)) * pr.acc;
        const double aB = sqrt(2.0) * pr.op_b + sqrt(double(M)) * pr.acc;   // o and dq: K = M
        const double aN = sqrt(2.0) * pr.op_b + sqrt(double(N)) * pr.acc;   // dv and dk: K = N
        const double aP = sqrt(2.0) * pr.op_b + sqrt(double(dv)) * pr.acc;  // dP: K = dv
        // Forward: o's row error and lse's.
        double sum_pv = 0, sum_ps = 0, sum_pqk = 0;
        for (int64_t j = 0; j < M; ++j) {
          const double p2 = p[j] * p[j], vn = sqrt(v2[j]);
          sum_pv += p2 * v2[j];
          sum_ps += p2 * q2 * k2[j] * (vn + on) * (vn + on);
          sum_pqk += p2 * q2 * k2[j];
        }
        const double var_o = aB * aB * sum_pv + aS * aS * sum_ps;
        const double eps = lam * sqrt(var_o) + 4 * u * on;
        const double dlse = lam * (aS * sqrt(sum_pqk) + sqrt(double(M)) * pr.acc) + 4 * u * (std::fabs(li) + 1);
        z.o2 += var_o;
        z.lse2 += dlse * dlse;
        // Backward.
        const double dD = ginf * eps + sqrt(double(dv)) * u * sqrt(g2) * on;
        for (int64_t j = 0; j < M; ++j) {
          const double p2 = p[j] * p[j];
          const double eta = sqrt(aS * aS * q2 * k2[j] + dlse * dlse) + 2 * u;
          const double dS = p[j] * (dP[j] - D);
          const double sigma2 = p2 * (eta * eta * (dP[j] - D) * (dP[j] - D) + aP * aP * w2[j]);
          z.dv2 += p2 * g2 * (aN * aN + eta * eta);
          z.dq2 += (sigma2 + aB * aB * dS * dS) * k2[j];
          z.dk2 += (sigma2 + p2 * dD * dD + aN * aN * dS * dS) * q2;
        }
        z.dq2 += dD * dD * kbar2;
      }
    }
  }
  const double fo = detail::frobenius(ref_o), fl = detail::frobenius(lse), fq = detail::frobenius(ref_dq),
               fk = detail::frobenius(ref_dk), fv = detail::frobenius(ref_dv);
  std::vector<AttentionBounds> out;
  for (const Sums& z : sums) {
    AttentionBounds bd;
    bd.o = lam * sqrt(scale * z.o2) + (4 * lam + 1) * u * fo;
    bd.lse = sqrt(scale * z.lse2) + u * fl;
    bd.dv = lam * sqrt(scale * z.dv2) + u * fv;
    bd.dq = lam * sqrt(scale * z.dq2) + u * fq;
    bd.dk = lam * sqrt(scale * z.dk2) + u * fk;
    out.push_back(bd);
  }
  return out;
}

// attention_probs (fp32 FMA scores, K = dk; max, exp, a sum of M terms, divide): each probability
// errs by p_ij (ds_ij - dlse_i) with ds_ij ~ sqrt(dk) u |q_i||k_j| and the sum's sqrt(M) u, plus 4u
// for exp and divide; the same root-sum-square model gives
//   ||dP||^2 ~ lambda^2 sum_ij p_ij^2 (dk u^2 |q_i|^2 |k_j|^2 + M u^2) + (4u ||P||)^2,
// bounded here with qmax, kmax (largest column norms) so that it needs only ||P||: cheap and, for
// these few rows, hardly looser.
inline double attention_probs_bound(const Tensor& q, const Tensor& k, const Tensor& ref_probs) {
  const double u = kU, lam = detail::kLambda, pf = detail::frobenius(ref_probs);
  const double qk = detail::max_column_norm(q) * detail::max_column_norm(k);
  const double rel = lam * u * std::sqrt(double(q.size(1)) * qk * qk + double(k.size(2))) + 4 * u;
  return (rel + u) * pf;
}

}  // namespace ember::test
