// The cuBLAS and cuDNN calls of ember's code (include/cublas_v2.h, include/cudnn.h), as plain
// loops over host memory. They check how ember calls the libraries (operands, leading dimensions,
// strides, pointer modes), not the libraries: column-major, double accumulation.
#include <cublas_v2.h>
#include <cudnn.h>

#include <cstdint>
#include <vector>

struct cublasContext {
  cublasPointerMode_t mode = CUBLAS_POINTER_MODE_HOST;
};
struct cudnnContext {};

namespace {
// Element (i, j) of op(A), A column-major with leading dimension ld.
inline float at(const float* a, int ld, cublasOperation_t t, int64_t i, int64_t j) {
  return t == CUBLAS_OP_N ? a[i + j * ld] : a[j + i * ld];
}
float scalar(const cublasContext* h, const float* p) { return *p; }  // host and device memory are one
}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* h) { return *h = new cublasContext, CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy(cublasHandle_t h) { return delete h, CUBLAS_STATUS_SUCCESS; }
// A null handle is refused, as by the library.
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t) { return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t) { return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED; }
cublasStatus_t cublasGetPointerMode(cublasHandle_t h, cublasPointerMode_t* m) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  return *m = h->mode, CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t m) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  return h->mode = m, CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusString(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_ERROR"; }

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float* alpha, const float* a, int lda, long long sa,
                                         const float* b, int ldb, long long sb, const float* beta, float* c, int ldc,
                                         long long sc, int batch) {
  if (m < 0 || n < 0 || k < 0 || ldc < m || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const float al = scalar(h, alpha), be = scalar(h, beta);
  for (int p = 0; p < batch; ++p)
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double s = 0;
        for (int q = 0; q < k; ++q) s += double(at(a + p * sa, lda, ta, i, q)) * at(b + p * sb, ldb, tb, q, j);
        float& out = c[p * sc + i + int64_t{j} * ldc];
        out = static_cast<float>(al * s + (be == 0.0f ? 0.0 : double(be) * out));  // beta = 0 ignores C (NaN too)
      }
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float* alpha, const float* a, int lda, const float* b, int ldb, const float* beta,
                           float* c, int ldc) {
  return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}
cublasStatus_t cublasSgemv(cublasHandle_t h, cublasOperation_t t, int m, int n, const float* alpha, const float* a,
                           int lda, const float* x, int incx, const float* beta, float* y, int incy) {
  if (m < 0 || n < 0 || lda < m) return CUBLAS_STATUS_INVALID_VALUE;
  const float al = scalar(h, alpha), be = scalar(h, beta);
  const int rows = t == CUBLAS_OP_N ? m : n, cols = t == CUBLAS_OP_N ? n : m;
  std::vector<float> r(rows);
  for (int i = 0; i < rows; ++i) {
    double s = 0;
    for (int j = 0; j < cols; ++j) s += double(at(a, lda, t, i, j)) * x[int64_t{j} * incx];
    r[i] = static_cast<float>(al * s + (be == 0.0f ? 0.0 : double(be) * y[int64_t{i} * incy]));
  }
  for (int i = 0; i < rows; ++i) y[int64_t{i} * incy] = r[i];
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSdot(cublasHandle_t, int n, const float* x, int incx, const float* y, int incy, float* result) {
  double s = 0;
  for (int i = 0; i < n; ++i) s += double(x[int64_t{i} * incx]) * y[int64_t{i} * incy];
  *result = static_cast<float>(s);
  return CUBLAS_STATUS_SUCCESS;
}

const char* cudnnGetErrorString(cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS ? "CUDNN_STATUS_SUCCESS" : "CUDNN_STATUS_ERROR"; }
cudnnStatus_t cudnnCreate(cudnnHandle_t* h) { return *h = new cudnnContext, CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, struct CUstream_st*) { return h ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM; }
