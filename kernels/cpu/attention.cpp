// The attention core on the CPU, in float (kernels/attention.inc); tested against the double
// reference in attention_reference.cpp.
//
//   q [B, dk, N], k [B, dk, M], v [B, dv, M], o [B, dv, N], lse [B, N]
//   s_ij = sum_c q[c,i] k[c,j];  p_ij = exp(s_ij - lse_i);  o[c,i] = sum_j p_ij v[c,j]
//
// GEMM-based, one tile of T query rows at a time: the [T, M] block of scores (and in backward
// of dP) is sized to stay in L2 (kTileBytes), so the N x M map is never held whole. Per tile:
//   forward   S = Q_t^T K (sgemm) -> p = softmax rows of S, lse -> O_t = V P^T (sgemm)
//   backward  S = Q_t^T K, dP = dO_t^T V (sgemm) -> P = exp(S - lse), dS = P o (dP - D)
//             dV += dO_t P, dK += Q_t dS (sgemm, summed over tiles), dQ_t = K dS^T (sgemm)
//   with D_i = sum_c dO[c,i] o[c,i] (= sum_j p_ij dP_ij).
// The row loops (max, exp, sums) are vectorised: a polynomial exp the compiler can vectorise,
// built as per-CPU clones (EMBER_VECTOR_CLONES). Threads: forward over (batch, tile) pairs,
// backward over batches (dK and dV sum over a batch's tiles); each thread's GEMMs run single-
// threaded inside the parallel loop. With one batch entry the loop is serial and the GEMMs
// use the threads instead.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_fallback.h"
#include "kernels/cpu/scratch.h"
#include "kernels/kernels.h"

namespace ember::cpu {

namespace {

constexpr int64_t kTileBytes = 128 * 1024;  // one [T, M] float block of scores

// Query rows per tile: the block of scores fits kTileBytes, at least 16 rows (GEMM efficiency).
int64_t tile_rows(int64_t N, int64_t M) {
  const int64_t t = std::max<int64_t>(16, kTileBytes / (4 * M)) / 16 * 16;
  return std::min(N, t);
}

using detail::scratch;

// exp(x) in float, branch-free so that loops over it vectorise. x = n ln2 + r with |r| <= ln2/2,
// exp(r) by its degree-7 Taylor polynomial (relative error < 1e-8 there, so ~1 ulp overall), 2^n
// built in the exponent bits. x is clamped to [-87.3, 88.3], the range of normal floats: below,
// the result is ~1.2e-38 instead of a denormal or 0 (harmless in a softmax sum); NaN stays NaN
// (the clamps compare, and a comparison with NaN keeps x).
inline float exp_vec(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  constexpr float kLog2e = 1.44269504f, kLn2Hi = 0.693145752f, kLn2Lo = 1.42860677e-6f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = x * kLog2e + kRound;
  const float n = t - kRound;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &t, 4);  // the low mantissa bits of t hold n (two's complement)
  const int32_t e = (bits - 0x4B400000 + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, 4);
  return p * scale;
}

// One row of scores s[M] -> its probabilities, in place; returns log sum_j exp(s_j).
EMBER_VECTOR_CLONES float softmax_row(float* __restrict s, int64_t M) {
  float mx = s[0];
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < M; ++j) mx = std::max(mx, s[j]);
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < M; ++j) {
    s[j] = exp_vec(s[j] - mx);
    sum += s[j];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < M; ++j) s[j] *= inv;
  return mx + std::log(sum);
}

// One row: s[M] (scores) -> p = exp(s - lse); dp[M] (dO . V) -> dS = p (dp - D).
EMBER_VECTOR_CLONES void softmax_grad_row(float* __restrict s, float* __restrict dp, int64_t M, float lse, float D) {
#pragma omp simd
  for (int64_t j = 0; j < M; ++j) {
    const float p = exp_vec(s[j] - lse);
    s[j] = p;
    dp[j] = p * (dp[j] - D);
  }
}

// D[t] = sum_c g[c, i0 + t] o[c, i0 + t] for t < T (g, o are [C, N] of one batch).
EMBER_VECTOR_CLONES void row_dots(const float* __restrict g, const float* __restrict o, int64_t C, int64_t N,
                                  int64_t i0, int64_t T, float* __restrict D) {
  std::fill(D, D + T, 0.0f);
  for (int64_t c = 0; c < C; ++c) {
    const float* gc = g + c * N + i0;
    const float* oc = o + c * N + i0;
#pragma omp simd
    for (int64_t t = 0; t < T; ++t) D[t] += gc[t] * oc[t];
  }
}

struct Dims {
  int64_t B, dk, dv, N, M;
};

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o, Tensor& lse) {
  const Dims d{q.size(0), q.size(1), v.size(1), q.size(2), k.size(2)};
  const float *pq = q.data(), *pk = k.data(), *pv = v.data();
  float *po = o.data(), *plse = lse.data();
  const int64_t T = tile_rows(d.N, d.M), tiles = (d.N + T - 1) / T;
#pragma omp parallel for collapse(2) schedule(dynamic) if (d.B > 1 && d.B * d.N * d.M * (d.dk + d.dv) > 100000)
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t i0 = t * T, nt = std::min(T, d.N - i0);
      const float* qb = pq + b * d.dk * d.N;  // [dk, N]
      const float* kb = pk + b * d.dk * d.M;  // [dk, M]
      const float* vb = pv + b * d.dv * d.M;  // [dv, M]
      float* S = scratch(nt * d.M);           // [nt, M]
      detail::gemm(true, false, nt, d.M, d.dk, 1.0f, qb + i0, d.N, kb, d.M, 0.0f, S, d.M);
      for (int64_t r = 0; r < nt; ++r) plse[b * d.N + i0 + r] = softmax_row(S + r * d.M, d.M);
      // o[:, i0 : i0 + nt] = V [dv, M] . P^T [M, nt]
      detail::gemm(false, true, d.dv, nt, d.M, 1.0f, vb, d.M, S, d.M, 0.0f, po + b * d.dv * d.N + i0, d.N);
    }
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                        const Tensor& d_o, Tensor& dq, Tensor& dk, Tensor& dv) {
  const Dims d{q.size(0), q.size(1), v.size(1), q.size(2), k.size(2)};
  const float *pq = q.data(), *pk = k.data(), *pv = v.data(), *po = o.data(), *plse = lse.data();
  const float* pdo = d_o.data();
  float *pdq = dq.data(), *pdk = dk.data(), *pdv = dv.data();
  const int64_t T = tile_rows(d.N, d.M);
#pragma omp parallel for schedule(dynamic) if (d.B > 1 && d.B * d.N * d.M * (d.dk + d.dv) > 100000)
  for (int64_t b = 0; b < d.B; ++b) {
    const float* qb = pq + b * d.dk * d.N;   // [dk, N]
    const float* kb = pk + b * d.dk * d.M;   // [dk, M]
    const float* vb = pv + b * d.dv * d.M;   // [dv, M]
    const float* gb = pdo + b * d.dv * d.N;  // dO [dv, N]
    const float* ob = po + b * d.dv * d.N;   // [dv, N]
    float* dkb = pdk + b * d.dk * d.M;       // [dk, M]
    float* dvb = pdv + b * d.dv * d.M;       // [dv, M]
    float* buf = scratch(2 * T * d.M + T);
    for (int64_t i0 = 0; i0 < d.N; i0 += T) {
      const int64_t nt = std::min(T, d.N - i0);
      float *S = buf, *dP = buf + T * d.M, *D = buf + 2 * T * d.M;  // [nt, M], [nt, M], [nt]
      detail::gemm(true, false, nt, d.M, d.dk, 1.0f, qb + i0, d.N, kb, d.M, 0.0f, S, d.M);
      detail::gemm(true, false, nt, d.M, d.dv, 1.0f, gb + i0, d.N, vb, d.M, 0.0f, dP, d.M);
      row_dots(gb, ob, d.dv, d.N, i0, nt, D);
      for (int64_t r = 0; r < nt; ++r)
        softmax_grad_row(S + r * d.M, dP + r * d.M, d.M, plse[b * d.N + i0 + r], D[r]);  // S = P, dP = dS
      const float beta = i0 == 0 ? 0.0f : 1.0f;  // the first tile assigns, the others add
      detail::gemm(false, false, d.dv, d.M, nt, 1.0f, gb + i0, d.N, S, d.M, beta, dvb, d.M);   // dV += dO_t P
      detail::gemm(false, false, d.dk, d.M, nt, 1.0f, qb + i0, d.N, dP, d.M, beta, dkb, d.M);  // dK += Q_t dS
      detail::gemm(false, true, d.dk, nt, d.M, 1.0f, kb, d.M, dP, d.M, 0.0f, pdq + b * d.dk * d.N + i0, d.N);
    }
  }
}

}  // namespace ember::cpu
