// Internal to the CPU backend: single-precision GEMM on raw row-major pointers, used by
// cpu::matmul and the convolution kernels, and the built-in blocked kernel behind it (declared
// here so that tests can run it even when CBLAS is linked).
#pragma once
#include <cstdint>

namespace ember::cpu::detail {

// C[M,N] = alpha * op(A) op(B) + beta * C, all row-major.
//   A is [M,K] (row stride lda), or [K,M] when trans_a; B is [K,N] (row stride ldb), or [N,K]
//   when trans_b; C is [M,N] (row stride ldc). beta == 0 never reads C (it may hold NaNs).
// Through cblas_sgemm when EMBER_WITH_CBLAS is defined, else gemm_fallback.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The same contract, computed by the readable cache-blocked kernel with OpenMP.
void gemm_fallback(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace ember::cpu::detail
