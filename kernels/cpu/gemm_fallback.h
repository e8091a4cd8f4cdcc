// Internal to the CPU backend: single-precision GEMM on raw row-major pointers, used by
// cpu::matmul and the convolution kernels, and the built-in blocked kernel behind it (declared
// here so that tests can run it even when a BLAS library is loaded).
#pragma once
#include <cstdint>

namespace ember::cpu::detail {

// C[M,N] = alpha * op(A) op(B) + beta * C, all row-major.
//   A is [M,K] (row stride lda), or [K,M] when trans_a; B is [K,N] (row stride ldb), or [N,K]
//   when trans_b; C is [M,N] (row stride ldc). beta == 0 never reads C (it may hold NaNs).
// Through the BLAS library's sgemm when one is loaded (kernels/cpu/blas.h), else gemm_fallback.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Floating-point operations (2 M N K per call) issued through gemm() since the start: benchmarks
// divide it by time for the achieved GFLOP/s.
uint64_t gemm_flops();
// Adds GEMM-equivalent work done outside gemm() (oneDNN's convolutions: 2 per multiply-add), so
// that gemm_flops() counts a convolution the same on either path.
void add_gemm_flops(uint64_t flops);

// The same contract, computed by the readable cache-blocked kernel with OpenMP.
void gemm_fallback(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace ember::cpu::detail
