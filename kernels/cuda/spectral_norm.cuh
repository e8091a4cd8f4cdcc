// Host-side entry points of the spectral-norm CUDA kernels (kernels/cuda/spectral_norm.cu and,
// for the benchmark baseline, spectral_norm_unfused.cu), below the Tensor-level
// ember::cuda::spectral_norm_* functions: raw device pointers, the matrix view, a workspace and
// a stream. The tests and the benchmark include this header; it compiles with a plain C++
// compiler.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace ember::cuda {

// The weight seen as the matrix Wm [rows, cols] of kernels/spectral_norm_layout.h:
// Wm[r][c] = w[(c / inner) * rows * inner + r * inner + c % inner]. inner == cols for dim 0.
struct SnDims {
  int64_t rows = 1, cols = 1, inner = 1;
};

// Floats of device workspace (16-byte aligned) the fused launches below need for this view
// on the current device.
int64_t sn_workspace_floats(SnDims d);

// One training step in place, two launches, no host synchronisation:
//   v = normalize(Wm^T u), u = normalize(Wm v), sigma = u . (Wm v).
// w (numel), u (rows), v (cols), sigma (1).
void sn_power_iteration_launch(const float* w, SnDims d, float eps, float* u, float* v, float* sigma,
                               float* workspace, cudaStream_t stream);
// sigma = u . (Wm v) (eval mode), one launch; u and v are not changed.
void sn_sigma_launch(const float* w, SnDims d, const float* u, const float* v, float* sigma, float* workspace,
                     cudaStream_t stream);
// w_sn = w / sigma, sigma read on the device.
void sn_scale_launch(const float* w, const float* sigma, float* w_sn, int64_t n, cudaStream_t stream);
// dw = (g - <g, w> / sigma * u v^T) / sigma, two launches.
void sn_backward_launch(const float* w, SnDims d, const float* u, const float* v, const float* sigma,
                        const float* g, float* dw, float* workspace, cudaStream_t stream);

// The same steps for many weights at once (a model's spectral-normalised layers): two launches
// (training) or one (eval) for up to kSnGroupMax weights, every weight's blocks side by side in
// one grid. Each weight gets the blocks, thread layout and summation order of its own launch
// above, so the results are bitwise those of sn_power_iteration_launch / sn_sigma_launch.
struct SnGroupItem {
  const float* w = nullptr;
  SnDims d;
  float eps = 1e-12f;
  float *u = nullptr, *v = nullptr, *sigma = nullptr;
};
constexpr int kSnGroupMax = 24;
int64_t sn_group_workspace_floats(const SnGroupItem* items, int n);
void sn_group_step_launch(const SnGroupItem* items, int n, bool training, float* workspace, cudaStream_t stream);

// The baseline of the benchmark (and a cross-check in the tests): the launch sequence that
// torch.nn.utils.spectral_norm issues for one training forward --
//   [dim != 0: permute+contiguous copy of w]
//   gemv Wm^T u, norm, clamp_min(eps), div -> v; gemv Wm v, norm, clamp_min(eps), div -> u;
//   clone u, clone v; gemv Wm v, dot(u, .) -> sigma; w / sigma -> w_sn
// through cuBLAS and one small kernel per elementwise or reduction step.
int64_t sn_unfused_workspace_floats(SnDims d);
void sn_unfused_forward(cublasHandle_t handle, const float* w, SnDims d, float eps, float* u, float* v,
                        float* sigma, float* w_sn, float* workspace, cudaStream_t stream);

}  // namespace ember::cuda
