// The double-precision reference of the attention core (kernels/attention.inc): the oracle that
// the float CPU kernels (attention.cpp) and the CUDA kernels are tested against, and
// cpu::attention_probs (a few rows, for pictures). One query row (or one key column) at a time
// with double accumulators; it holds one row of M scores, never the N x M map.
//
//   q [B, dk, N], k [B, dk, M], v [B, dv, M], o [B, dv, N], lse [B, N]
//   s_ij = sum_c q[c,i] k[c,j];  p_ij = exp(s_ij - lse_i);  o[c,i] = sum_j p_ij v[c,j]
//
// Backward, recomputing p from lse (the same equations as the fused CUDA kernels):
//   D_i    = sum_c dO[c,i] o[c,i]                 (= sum_j p_ij dP_ij)
//   dP_ij  = sum_c dO[c,i] v[c,j]
//   dS_ij  = p_ij (dP_ij - D_i)
//   dq[c,i] = sum_j dS_ij k[c,j]      (a pass over query rows)
//   dk[c,j] = sum_i dS_ij q[c,i],  dv[c,j] = sum_i p_ij dO[c,i]   (a pass over key columns)
// Every inner loop runs along the contiguous position axis of the channel-major tensors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_reference.h"
#include "kernels/kernels.h"

namespace ember::cpu {

namespace {

struct Dims {
  int64_t B, dk, dv, N, M;
};

Dims dims_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return Dims{q.size(0), q.size(1), v.size(1), q.size(2), k.size(2)};
}

// s[j] = sum_c q[c,i] k[c,j] for every key j of one batch (q, k point at that batch).
void score_row(const float* q, const float* k, int64_t i, const Dims& d, std::vector<double>& s) {
  std::fill(s.begin(), s.end(), 0.0);
  for (int64_t c = 0; c < d.dk; ++c) {
    const double qc = q[c * d.N + i];
    const float* kc = k + c * d.M;
    for (int64_t j = 0; j < d.M; ++j) s[j] += qc * kc[j];
  }
}

// s[i] = sum_c q[c,i] k[c,j] for every query i (the column j of the score map).
void score_col(const float* q, const float* k, int64_t j, const Dims& d, std::vector<double>& s) {
  std::fill(s.begin(), s.end(), 0.0);
  for (int64_t c = 0; c < d.dk; ++c) {
    const double kc = k[c * d.M + j];
    const float* qc = q + c * d.N;
    for (int64_t i = 0; i < d.N; ++i) s[i] += kc * qc[i];
  }
}

// log sum_j exp(s_j), safe for large scores.
double log_sum_exp(const std::vector<double>& s) {
  double mx = -std::numeric_limits<double>::infinity();
  for (double x : s) mx = std::max(mx, x);
  double sum = 0;
  for (double x : s) sum += std::exp(x - mx);
  return mx + std::log(sum);
}

}  // namespace

namespace reference {

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o, Tensor& lse) {
  const Dims d = dims_of(q, k, v);
  const float *pq = q.data(), *pk = k.data(), *pv = v.data();
  float *po = o.data(), *plse = lse.data();
#pragma omp parallel for collapse(2) schedule(static) if (d.B * d.N * d.M * (d.dk + d.dv) > 100000)
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t i = 0; i < d.N; ++i) {
      std::vector<double> s(d.M);
      const float* qb = pq + b * d.dk * d.N;
      const float* kb = pk + b * d.dk * d.M;
      const float* vb = pv + b * d.dv * d.M;
      score_row(qb, kb, i, d, s);
      const double l = log_sum_exp(s);
      for (double& x : s) x = std::exp(x - l);  // s now holds p_ij
      for (int64_t c = 0; c < d.dv; ++c) {
        const float* vc = vb + c * d.M;
        double acc = 0;
        for (int64_t j = 0; j < d.M; ++j) acc += s[j] * vc[j];
        po[(b * d.dv + c) * d.N + i] = static_cast<float>(acc);
      }
      plse[b * d.N + i] = static_cast<float>(l);
    }
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                        const Tensor& d_o, Tensor& dq, Tensor& dk, Tensor& dv) {
  const Dims d = dims_of(q, k, v);
  const float *pq = q.data(), *pk = k.data(), *pv = v.data(), *po = o.data(), *plse = lse.data();
  const float* pdo = d_o.data();
  float *pdq = dq.data(), *pdk = dk.data(), *pdv = dv.data();
  const bool par = d.B * d.N * d.M * (d.dk + d.dv) > 100000;

  // D_i = sum_c dO[c,i] o[c,i], in double.
  std::vector<double> D(d.B * d.N, 0.0);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t c = 0; c < d.dv; ++c) {
      const float* oc = po + (b * d.dv + c) * d.N;
      const float* gc = pdo + (b * d.dv + c) * d.N;
      for (int64_t i = 0; i < d.N; ++i) D[b * d.N + i] += static_cast<double>(gc[i]) * oc[i];
    }

  // Row pass: dq.
#pragma omp parallel for collapse(2) schedule(static) if (par)
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t i = 0; i < d.N; ++i) {
      const float* qb = pq + b * d.dk * d.N;
      const float* kb = pk + b * d.dk * d.M;
      const float* vb = pv + b * d.dv * d.M;
      const float* gb = pdo + b * d.dv * d.N;
      std::vector<double> s(d.M), dp(d.M, 0.0);
      score_row(qb, kb, i, d, s);
      for (int64_t c = 0; c < d.dv; ++c) {
        const double g = gb[c * d.N + i];
        const float* vc = vb + c * d.M;
        for (int64_t j = 0; j < d.M; ++j) dp[j] += g * vc[j];
      }
      const double l = plse[b * d.N + i], Di = D[b * d.N + i];
      for (int64_t j = 0; j < d.M; ++j) s[j] = std::exp(s[j] - l) * (dp[j] - Di);  // s now holds dS_ij
      for (int64_t c = 0; c < d.dk; ++c) {
        const float* kc = kb + c * d.M;
        double acc = 0;
        for (int64_t j = 0; j < d.M; ++j) acc += s[j] * kc[j];
        pdq[(b * d.dk + c) * d.N + i] = static_cast<float>(acc);
      }
    }

  // Column pass: dk and dv.
#pragma omp parallel for collapse(2) schedule(static) if (par)
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t j = 0; j < d.M; ++j) {
      const float* qb = pq + b * d.dk * d.N;
      const float* kb = pk + b * d.dk * d.M;
      const float* vb = pv + b * d.dv * d.M;
      const float* gb = pdo + b * d.dv * d.N;
      std::vector<double> s(d.N), dp(d.N, 0.0);
      score_col(qb, kb, j, d, s);
      for (int64_t c = 0; c < d.dv; ++c) {
        const double vcj = vb[c * d.M + j];
        const float* gc = gb + c * d.N;
        for (int64_t i = 0; i < d.N; ++i) dp[i] += vcj * gc[i];
      }
      for (int64_t i = 0; i < d.N; ++i) s[i] = std::exp(s[i] - plse[b * d.N + i]);  // p_ij
      for (int64_t c = 0; c < d.dv; ++c) {
        const float* gc = gb + c * d.N;
        double acc = 0;
        for (int64_t i = 0; i < d.N; ++i) acc += s[i] * gc[i];
        pdv[(b * d.dv + c) * d.M + j] = static_cast<float>(acc);
      }
      for (int64_t i = 0; i < d.N; ++i) s[i] *= dp[i] - D[b * d.N + i];  // dS_ij
      for (int64_t c = 0; c < d.dk; ++c) {
        const float* qc = qb + c * d.N;
        double acc = 0;
        for (int64_t i = 0; i < d.N; ++i) acc += s[i] * qc[i];
        pdk[(b * d.dk + c) * d.M + j] = static_cast<float>(acc);
      }
    }
}

}  // namespace reference

void attention_probs(const Tensor& q, const Tensor& k, const Tensor& query_idx, Tensor& probs) {
  const int64_t B = q.size(0), dkc = q.size(1), N = q.size(2), M = k.size(2), nq = query_idx.numel();
  const Dims d{B, dkc, 0, N, M};
  const float *pq = q.data(), *pk = k.data(), *pidx = query_idx.data();
  float* pp = probs.data();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < nq; ++n) {
      const int64_t i = static_cast<int64_t>(pidx[n]);  // validated by the op entry
      std::vector<double> s(M);
      score_row(pq + b * dkc * N, pk + b * dkc * M, i, d, s);
      const double l = log_sum_exp(s);
      for (int64_t j = 0; j < M; ++j) pp[(b * nq + n) * M + j] = static_cast<float>(std::exp(s[j] - l));
    }
}

}  // namespace ember::cpu
