// CUDA GEMM (kernels/gemm.inc; reference: kernels/cpu/gemm.cpp): cuBLAS SGEMM.
//
// Row-major trick: cuBLAS is column-major, and a row-major [M, N] matrix is the column-major
// [N, M] matrix of its transpose. So C = op(A) op(B) (row-major) is computed as the
// column-major C^T = op(B)^T op(A)^T: swap the operands and M with N, keep the trans flags,
// and every leading dimension is the row length of the row-major array.
// Batched calls use cublasSgemmStridedBatched (a 2-D `a` shared by every batch: stride 0).
// TF32: cublas_handle() sets CUBLAS_TF32_TENSOR_OP_MATH when context().allow_tf32 (10-bit
// mantissa products, fp32 accumulation: ~1e-3 relative error), else full fp32.
// Floor: 2*M*N*K FLOPs (H100: ~50 TFLOP/s fp32 FMA, ~400 TFLOP/s dense TF32) and
// 4*(M*K + K*N + M*N) bytes.
#include <climits>

#include "kernels/cuda/common.cuh"

namespace ember::cuda {

void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a, bool trans_b, float alpha, float beta) {
  const bool batched = c.dim() == 3;
  const int64_t batch = batched ? c.size(0) : 1;
  const int ra = a.dim() - 2, rb = b.dim() - 2;  // index of the row dimension of each matrix
  const int64_t M = trans_a ? a.size(ra + 1) : a.size(ra);
  const int64_t K = trans_a ? a.size(ra) : a.size(ra + 1);
  const int64_t N = trans_b ? b.size(rb) : b.size(rb + 1);
  if (M == 0 || N == 0 || batch == 0) return;
  EMBER_CHECK(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && batch <= INT_MAX,
              "matmul (cuda): dimensions M=" << M << " N=" << N << " K=" << K << " exceed cuBLAS's int range");
  // Leading dimensions: the row length of each row-major array (at least 1 for cuBLAS).
  const int lda = static_cast<int>(trans_a ? (M > 0 ? M : 1) : (K > 0 ? K : 1));
  const int ldb = static_cast<int>(trans_b ? (K > 0 ? K : 1) : N);
  const int ldc = static_cast<int>(N);
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasHandle_t h = cuda_rt::cublas_handle();
  if (!batched) {
    EMBER_CUBLAS_CHECK(cublasSgemm(h, op_b, op_a, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha,
                                   b.data(), ldb, a.data(), lda, &beta, c.data(), ldc));
    return;
  }
  const long long stride_a = a.dim() == 3 ? M * K : 0;
  const long long stride_b = N * K;
  const long long stride_c = M * N;
  EMBER_CUBLAS_CHECK(cublasSgemmStridedBatched(h, op_b, op_a, static_cast<int>(N), static_cast<int>(M),
                                               static_cast<int>(K), &alpha, b.data(), ldb, stride_b, a.data(), lda,
                                               stride_a, &beta, c.data(), ldc, stride_c, static_cast<int>(batch)));
}

}  // namespace ember::cuda
