// The unfused spectral-norm forward: the launch sequence torch.nn.utils.spectral_norm issues
// for one training forward, rebuilt from cuBLAS calls and one small kernel per step. It is the
// baseline that benchmarks/bench_spectral_norm times the fused kernels against (in the same
// program, on the same data), and the CUDA tests check it against the CPU reference so that
// the baseline is known to compute the same thing. ember's layers never call it.
//
// PyTorch (torch/nn/utils/spectral_norm.py, compute_weight, one power iteration):
//     weight_mat = weight.permute(dim, ...).reshape(rows, -1)       copy kernel when dim != 0
//     v = normalize(mv(weight_mat.t(), u), eps, out=v)              gemv, norm, clamp_min, div
//     u = normalize(mv(weight_mat, v), eps, out=u)                  gemv, norm, clamp_min, div
//     u, v = u.clone(), v.clone()                                   2 copies
//     sigma = dot(u, mv(weight_mat, v))                             gemv, dot
//     weight = weight / sigma                                       div
// 13 launches (14 for dim != 0); W is read four times (three gemvs and the divide).
#include <algorithm>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/spectral_norm.cuh"

namespace ember::cuda {

namespace {

constexpr int kThreads = 256;

// wp = Wm as a contiguous row-major (rows, cols) matrix: PyTorch's permute(...).contiguous().
__global__ void unfused_permute(const float* __restrict__ w, int64_t rows, int64_t cols, int64_t inner,
                                float* __restrict__ wp) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    wp[i] = w[(c / inner) * rows * inner + r * inner + c % inner];
  }
}

// out[0] = ||x|| (PyTorch's norm reduction of a vector).
__global__ void unfused_norm(const float* __restrict__ x, int64_t n, float* __restrict__ out) {
  EMBER_SHARED(float, scratch, [32]);
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += x[i] * x[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *out = sqrtf(s);
}

// x[0] = max(x[0], eps) (clamp_min on the one-element norm).
__global__ void unfused_clamp_min(float* x, float eps) { *x = nan_max(*x, eps); }

// out = a / s[0] (a broadcast divide).
__global__ void unfused_div(const float* __restrict__ a, const float* __restrict__ s, int64_t n,
                            float* __restrict__ out) {
  const float d = *s;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = a[i] / d;
}

unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::clamp<int64_t>(ceil_div(n, kThreads), 1, 65535));
}

void check_cublas(cublasStatus_t st, const char* what) {
  EMBER_CHECK(st == CUBLAS_STATUS_SUCCESS, "spectral_norm unfused baseline: " << what << " returned cuBLAS status "
                                                                              << static_cast<int>(st));
}

struct Regions {
  int64_t wp, vtmp, utmp, t, uc, vc, scal, total;
};
Regions regions(SnDims d) {
  auto r4 = [](int64_t n) { return (n + 3) & ~int64_t{3}; };
  Regions g{};
  int64_t at = 0;
  g.wp = at, at += d.inner == d.cols ? 0 : r4(d.rows * d.cols);
  g.vtmp = at, at += r4(d.cols);
  g.utmp = at, at += r4(d.rows);
  g.t = at, at += r4(d.rows);
  g.uc = at, at += r4(d.rows);
  g.vc = at, at += r4(d.cols);
  g.scal = at, at += 4;
  g.total = at;
  return g;
}

}  // namespace

int64_t sn_unfused_workspace_floats(SnDims d) { return regions(d).total; }

void sn_unfused_forward(cublasHandle_t h, const float* w, SnDims d, float eps, float* u, float* v, float* sigma,
                        float* w_sn, float* ws, cudaStream_t st) {
  cuda_rt::check_stream(st, "sn_unfused_forward");
  const Regions g = regions(d);
  const int m = static_cast<int>(d.cols), n = static_cast<int>(d.rows);
  const float one = 1.0f, zero = 0.0f;
  float* nrm = ws + g.scal;
  check_cublas(cublasSetStream(h, st), "cublasSetStream");
  cublasPointerMode_t mode;
  check_cublas(cublasGetPointerMode(h, &mode), "cublasGetPointerMode");
  check_cublas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode");

  const float* wm = w;  // Wm row-major (rows, cols) = column-major (cols, rows), ld = cols
  if (d.inner != d.cols) {
    EMBER_LAUNCH(grid_for(d.rows * d.cols), kThreads, 0, st, unfused_permute)(w, d.rows, d.cols, d.inner, ws + g.wp);
    EMBER_CUDA_LAUNCH_CHECK("unfused_permute");
    wm = ws + g.wp;
  }
  // v = normalize(Wm^T u)
  check_cublas(cublasSgemv(h, CUBLAS_OP_N, m, n, &one, wm, m, u, 1, &zero, ws + g.vtmp, 1), "cublasSgemv (W^T u)");
  EMBER_LAUNCH(1, 512, 0, st, unfused_norm)(ws + g.vtmp, d.cols, nrm);
  EMBER_LAUNCH(1, 1, 0, st, unfused_clamp_min)(nrm, eps);
  EMBER_LAUNCH(grid_for(d.cols), kThreads, 0, st, unfused_div)(ws + g.vtmp, nrm, d.cols, v);
  EMBER_CUDA_LAUNCH_CHECK("unfused normalize v");
  // u = normalize(Wm v)
  check_cublas(cublasSgemv(h, CUBLAS_OP_T, m, n, &one, wm, m, v, 1, &zero, ws + g.utmp, 1), "cublasSgemv (W v)");
  EMBER_LAUNCH(1, 512, 0, st, unfused_norm)(ws + g.utmp, d.rows, nrm + 1);
  EMBER_LAUNCH(1, 1, 0, st, unfused_clamp_min)(nrm + 1, eps);
  EMBER_LAUNCH(grid_for(d.rows), kThreads, 0, st, unfused_div)(ws + g.utmp, nrm + 1, d.rows, u);
  EMBER_CUDA_LAUNCH_CHECK("unfused normalize u");
  // u, v = u.clone(), v.clone()
  EMBER_CUDA_CHECK(cudaMemcpyAsync(ws + g.uc, u, d.rows * sizeof(float), cudaMemcpyDeviceToDevice, st));
  EMBER_CUDA_CHECK(cudaMemcpyAsync(ws + g.vc, v, d.cols * sizeof(float), cudaMemcpyDeviceToDevice, st));
  // sigma = dot(u, Wm v), written on the device
  check_cublas(cublasSgemv(h, CUBLAS_OP_T, m, n, &one, wm, m, ws + g.vc, 1, &zero, ws + g.t, 1), "cublasSgemv (W v)");
  check_cublas(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE), "cublasSetPointerMode");
  check_cublas(cublasSdot(h, n, ws + g.uc, 1, ws + g.t, 1, sigma), "cublasSdot");
  check_cublas(cublasSetPointerMode(h, mode), "cublasSetPointerMode");
  // weight / sigma
  EMBER_LAUNCH(grid_for(d.rows * d.cols), kThreads, 0, st, unfused_div)(w, sigma, d.rows * d.cols, w_sn);
  EMBER_CUDA_LAUNCH_CHECK("unfused w / sigma");
}

}  // namespace ember::cuda
