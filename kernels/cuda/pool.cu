// CUDA pooling and nearest upsampling by 2 (kernels/pool.inc; reference: kernels/cpu/pool.cpp).
//
// Algorithm: one thread per element of the smaller grid (the pooled output, or the upsampled
// input) handling its whole 2x2 window, so every element is written by exactly one thread
// (no atomics): forward pools read 4 and write 1, their backward reads 1 and writes 4;
// upsampling is the mirror image. Max pool backward recomputes the window's first maximum
// (row-major order, strict >) from x instead of storing indices.
// Floor: 5 floats moved per window (avg/upsample), 6 for max-pool backward; a few FLOPs.
#include "kernels/cuda/common.cuh"

namespace ember::cuda {

namespace {

// The 2x2 window of small-grid element j: offset of its top-left element in the large grid.
struct Window {
  int64_t top_left;  // index into the [planes, 2h, 2w] tensor
  int64_t row;       // distance to the next row of the large grid (2w)
};
__device__ __forceinline__ Window window_of(int64_t j, int64_t h, int64_t w) {
  const int64_t plane = j / (h * w), r = j % (h * w);
  const int64_t oy = r / w, ox = r % w;
  return {(plane * 2 * h + 2 * oy) * 2 * w + 2 * ox, 2 * w};
}

// dst[j] = scale * (sum of the 2x2 window of j in src), summed in the CPU's order:
// average pooling (scale 1/4) and the backward of upsampling (scale 1).
__global__ void window_sum_kernel(int64_t n, const float* src, int64_t h, int64_t w, float scale, float* dst) {
  const int64_t j = global_index();
  if (j >= n) return;
  const Window win = window_of(j, h, w);
  const float* p = src + win.top_left;
  dst[j] = scale * (p[0] + p[1] + p[win.row] + p[win.row + 1]);
}

// Every element of the 2x2 window of j in dst = scale * src[j]: upsampling (scale 1) and the
// backward of average pooling (scale 1/4).
__global__ void window_spread_kernel(int64_t n, const float* src, int64_t h, int64_t w, float scale, float* dst) {
  const int64_t j = global_index();
  if (j >= n) return;
  const Window win = window_of(j, h, w);
  const float v = scale * src[j];
  float* p = dst + win.top_left;
  p[0] = v, p[1] = v, p[win.row] = v, p[win.row + 1] = v;
}

__global__ void maxpool_forward_kernel(int64_t n, const float* x, int64_t ho, int64_t wo, float* y) {
  const int64_t j = global_index();
  if (j >= n) return;
  const Window win = window_of(j, ho, wo);
  const float* p = x + win.top_left;
  // A NaN is the maximum, as in PyTorch (the maximum would otherwise skip it).
  float best = p[0];
  if (p[1] > best || isnan(p[1])) best = p[1];
  if (p[win.row] > best || isnan(p[win.row])) best = p[win.row];
  if (p[win.row + 1] > best || isnan(p[win.row + 1])) best = p[win.row + 1];
  y[j] = best;
}

__global__ void maxpool_backward_kernel(int64_t n, const float* x, const float* dy, int64_t ho, int64_t wo, float* dx) {
  const int64_t j = global_index();
  if (j >= n) return;
  const Window win = window_of(j, ho, wo);
  const int64_t at[4] = {0, 1, win.row, win.row + 1};
  const float* p = x + win.top_left;
  int arg = 0;
  for (int k = 1; k < 4; ++k)
    if (p[at[k]] > p[at[arg]] || isnan(p[at[k]])) arg = k;  // the last NaN, as the forward
  float* q = dx + win.top_left;
  for (int k = 0; k < 4; ++k) q[at[k]] = k == arg ? dy[j] : 0.f;
}

}  // namespace

void avgpool2x2_forward(const Tensor& x, Tensor& y) {
  linear_kernel(window_sum_kernel, 0, stream(), y.numel(), x.data(), y.size(2), y.size(3), 0.25f, y.data());
}
void avgpool2x2_backward(const Tensor& dy, Tensor& dx) {
  linear_kernel(window_spread_kernel, 0, stream(), dy.numel(), dy.data(), dy.size(2), dy.size(3), 0.25f, dx.data());
}
void maxpool2x2_forward(const Tensor& x, Tensor& y) {
  linear_kernel(maxpool_forward_kernel, 0, stream(), y.numel(), x.data(), y.size(2), y.size(3), y.data());
}
void maxpool2x2_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  linear_kernel(maxpool_backward_kernel, 0, stream(), dy.numel(), x.data(), dy.data(), dy.size(2), dy.size(3),
                dx.data());
}
void upsample2x_forward(const Tensor& x, Tensor& y) {
  linear_kernel(window_spread_kernel, 0, stream(), x.numel(), x.data(), x.size(2), x.size(3), 1.f, y.data());
}
void upsample2x_backward(const Tensor& dy, Tensor& dx) {
  linear_kernel(window_sum_kernel, 0, stream(), dx.numel(), dy.data(), dx.size(2), dx.size(3), 1.f, dx.data());
}

}  // namespace ember::cuda
