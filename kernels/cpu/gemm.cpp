// CPU reference for the GEMM family: cpu::matmul (2-D and batched) over detail::gemm, which is
// the BLAS library's sgemm when one is loaded (kernels/cpu/blas.h) and otherwise the blocked
// kernel below.
//
// The fallback follows the GotoBLAS structure, kept short:
//   for each [MC x NC] block of C (one OpenMP task each):
//     for each KC slice of the inner dimension:
//       pack op(A)[MC x KC] into panels of MR rows (scaled by alpha) and op(B)[KC x NC] into
//       panels of NR columns, so the transposes are handled once, here, and the inner loop
//       reads both operands contiguously;
//       for each MR x NR tile: accumulate over KC in a local array (registers), then add to C.
// Panels are zero-padded to full MR / NR, so the micro-kernel has no edge cases; only the
// write-back clips to the real tile. C is scaled by beta once, up front.
#include <algorithm>
#include <atomic>
#include <climits>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/gemm_fallback.h"
#include "kernels/kernels.h"

namespace ember::cpu {

namespace detail {

namespace {

std::atomic<uint64_t> g_flops{0};

constexpr int64_t kMC = 64, kKC = 256, kNC = 128;  // block of C and depth: A 64 KB + B 128 KB stay in L2
constexpr int kMR = 4, kNR = 8;                    // register tile: 4 x 8 accumulators
static_assert(kMC % kMR == 0 && kNC % kNR == 0, "blocks hold whole panels (the packing buffers assume it)");

// C = beta * C; beta == 0 writes zeros without reading (C may be uninitialised).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  if (beta == 1.0f) return;
#pragma omp parallel for if (M * N > 65536)
  for (int64_t i = 0; i < M; ++i) {
    float* row = C + i * ldc;
    if (beta == 0.0f)
      std::fill(row, row + N, 0.0f);
    else
      for (int64_t j = 0; j < N; ++j) row[j] *= beta;
  }
}

// Packs rows [r0, r0 + rows) x columns [c0, c0 + depth) of M = (trans ? S^T : S), S stored with
// row stride ld, into panels of W rows: dst[panel][p][r] = alpha * M[r0 + panel*W + r, c0 + p],
// rows past `rows` zero. op(A) is packed as is; op(B) as its transpose, so both read alike.
template <int W>
void pack_panels(const float* S, int64_t ld, bool trans, int64_t r0, int64_t c0, int64_t rows, int64_t depth,
                 float alpha, float* dst) {
  for (int64_t ir = 0; ir < rows; ir += W) {
    float* panel = dst + ir * depth;  // [depth][W]
    for (int64_t p = 0; p < depth; ++p)
      for (int r = 0; r < W; ++r) {
        const int64_t i = ir + r;
        float v = 0.0f;
        if (i < rows) v = trans ? S[(c0 + p) * ld + (r0 + i)] : S[(r0 + i) * ld + (c0 + p)];
        panel[p * W + r] = alpha * v;
      }
  }
}

// C[mr x nr] += sum_p a[p][:] (outer) b[p][:]; a is one A panel [kc][MR], b one B panel [kc][NR].
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* C, int64_t ldc, int64_t mr,
                  int64_t nr) {
  float acc[kMR][kNR] = {};
  for (int64_t p = 0; p < kc; ++p)
    for (int r = 0; r < kMR; ++r)
      for (int c = 0; c < kNR; ++c) acc[r][c] += a[p * kMR + r] * b[p * kNR + c];
  for (int64_t r = 0; r < mr; ++r)
    for (int64_t c = 0; c < nr; ++c) C[r * ldc + c] += acc[r][c];
}

}  // namespace

void gemm_fallback(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  scale_c(M, N, beta, C, ldc);
  if (K <= 0 || alpha == 0.0f) return;

  const int64_t m_blocks = (M + kMC - 1) / kMC, n_blocks = (N + kNC - 1) / kNC;
#pragma omp parallel if (M * N * K > 64 * 64 * 64)
  {
    // Per-thread packing buffers.
    std::vector<float> ap(kMC * kKC), bp(kKC * kNC);
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t jb = 0; jb < n_blocks; ++jb)
      for (int64_t ib = 0; ib < m_blocks; ++ib) {
        const int64_t i0 = ib * kMC, mc = std::min(kMC, M - i0);
        const int64_t j0 = jb * kNC, nc = std::min(kNC, N - j0);
        for (int64_t p0 = 0; p0 < K; p0 += kKC) {
          const int64_t kc = std::min(kKC, K - p0);
          pack_panels<kMR>(A, lda, trans_a, i0, p0, mc, kc, alpha, ap.data());  // op(A) rows
          pack_panels<kNR>(B, ldb, !trans_b, j0, p0, nc, kc, 1.0f, bp.data());  // op(B)^T rows = op(B) columns
          for (int64_t jr = 0; jr < nc; jr += kNR)
            for (int64_t ir = 0; ir < mc; ir += kMR)
              micro_kernel(kc, ap.data() + ir * kc, bp.data() + jr * kc, C + (i0 + ir) * ldc + (j0 + jr), ldc,
                           std::min<int64_t>(kMR, mc - ir), std::min<int64_t>(kNR, nc - jr));
        }
      }
  }
}

uint64_t gemm_flops() { return g_flops.load(std::memory_order_relaxed); }
void add_gemm_flops(uint64_t flops) { g_flops.fetch_add(flops, std::memory_order_relaxed); }

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M > 0 && N > 0 && K > 0) g_flops.fetch_add(static_cast<uint64_t>(2 * M * N * K), std::memory_order_relaxed);
  if (!blas::info().loaded) {
    gemm_fallback(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // BLAS rejects a zero leading dimension; the product is empty anyway
    scale_c(M, N, beta, C, ldc);
    return;
  }
  EMBER_CHECK(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX,
              "matmul: sizes M=" << M << " N=" << N << " K=" << K << " exceed the 32-bit BLAS interface");
  blas::sgemm(trans_a, trans_b, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

}  // namespace detail

void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a, bool trans_b, float alpha, float beta) {
  const int64_t M = c.size(-2), N = c.size(-1);
  const int64_t K = trans_a ? a.size(-2) : a.size(-1);
  const int64_t batch = c.dim() == 3 ? c.size(0) : 1;
  const int64_t a_step = a.dim() == 3 ? M * K : 0;  // a 2-D a is shared by every batch entry
  const float *pa = a.data(), *pb = b.data();
  float* pc = c.data();
  // Batches run one after another; the threads work inside each product.
  for (int64_t i = 0; i < batch; ++i)
    detail::gemm(trans_a, trans_b, M, N, K, alpha, pa + i * a_step, a.size(-1), pb + i * K * N, b.size(-1), beta,
                 pc + i * M * N, N);
}

}  // namespace ember::cpu
