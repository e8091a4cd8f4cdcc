// CUDA losses (kernels/loss.inc; reference: kernels/cpu/loss.cpp).
//
// Forward: each loss is a mean, computed by reduce_all (reduce.cuh): per-element terms folded
// by every block into a partial sum, the partials summed in order by one block: deterministic,
// no float atomics, no host synchronisation (the result stays on the device).
// Cross-entropy first computes each row's loss, logsumexp(logits[n]) - logits[n, label], with
// one warp per row (max and sum of exponentials by shuffle butterflies), then averages the rows.
// Backward: one thread per element (hinge, BCE) or one warp per row (cross-entropy), reading
// the incoming gradient dloss[0] on the device.
// Labels are floats holding class indices; one outside [0, K) makes that row's loss and
// gradient NaN, so the error cannot pass unnoticed (checking on the host would need a sync).
// Floor: one read of the inputs (forward), one read and one write (backward).
#include "kernels/cuda/reduce.cuh"

namespace ember::cuda {

namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerBlock = kLinearBlock / kWarp;

struct HingeTerm {
  const float* x;
  float sign;
  __device__ float operator()(int64_t i) const {
    const float m = 1.f - sign * x[i];
    return m <= 0.f ? 0.f : m;  // relu(m) that keeps a NaN
  }
};

struct BceTerm {
  const float *x, *t;
  __device__ float operator()(int64_t i) const {
    const float v = x[i];
    return fmaxf(v, 0.f) - v * t[i] + log1pf(expf(-fabsf(v)));
  }
};

struct RowTerm {
  const float* rows;
  __device__ float operator()(int64_t i) const { return rows[i]; }
};

__global__ void hinge_backward_kernel(int64_t n, const float* x, float sign, const float* dloss, float* dx) {
  const int64_t i = global_index();
  if (i >= n) return;
  const float g = dloss[0] / static_cast<float>(n);
  dx[i] = 1.f - sign * x[i] <= 0.f ? 0.f : -sign * g;  // passes at a NaN, as relu's
}

__global__ void bce_backward_kernel(int64_t n, const float* x, const float* t, const float* dloss, float* dx) {
  const int64_t i = global_index();
  if (i >= n) return;
  const float v = x[i];
  const float s = v >= 0.f ? 1.f / (1.f + expf(-v)) : expf(v) / (1.f + expf(v));
  dx[i] = dloss[0] / static_cast<float>(n) * (s - t[i]);
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Row statistics of logits[row, :K]: the maximum and sum(exp(x - max)), the same in every lane.
__device__ __forceinline__ float2 row_softmax_stats(const float* row, int64_t K, int lane) {
  float mx = -INFINITY;
  for (int64_t k = lane; k < K; k += kWarp) mx = nan_max(mx, row[k]);
  mx = warp_max(mx);
  float s = 0.f;
  for (int64_t k = lane; k < K; k += kWarp) s += expf(row[k] - mx);
  return make_float2(mx, warp_sum(s));
}

// One warp per row; the whole warp stays in the loop, so the shuffles see all 32 lanes.
__global__ void ce_rows_kernel(int64_t N, int64_t K, const float* logits, const float* labels, float* row_loss) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= N) return;
  const float* x = logits + row * K;
  const float2 st = row_softmax_stats(x, K, lane);
  if (lane == 0) {
    const float lf = labels[row];
    const bool valid = lf >= 0.f && lf < static_cast<float>(K);
    row_loss[row] = valid ? logf(st.y) + st.x - x[static_cast<int64_t>(lf)] : NAN;
  }
}

__global__ void ce_backward_kernel(int64_t N, int64_t K, const float* logits, const float* labels, const float* dloss,
                                   float* dlogits) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= N) return;
  const float* x = logits + row * K;
  const float2 st = row_softmax_stats(x, K, lane);
  const float g = dloss[0] / static_cast<float>(N);
  const float lf = labels[row];
  const bool valid = lf >= 0.f && lf < static_cast<float>(K);
  const int64_t label = valid ? static_cast<int64_t>(lf) : -1;
  float* d = dlogits + row * K;
  for (int64_t k = lane; k < K; k += kWarp) {
    const float p = expf(x[k] - st.x) / st.y;
    d[k] = valid ? g * (p - (k == label ? 1.f : 0.f)) : NAN;
  }
}

}  // namespace

void hinge_forward(const Tensor& x, float sign, Tensor& loss) {
  const int64_t n = x.numel();
  reduce_all(n, HingeTerm{x.data(), sign}, loss.data(), 1.f / static_cast<float>(n));
}

void hinge_backward(const Tensor& x, float sign, const Tensor& dloss, Tensor& dx) {
  linear_kernel(hinge_backward_kernel, 0, stream(), x.numel(), x.data(), sign, dloss.data(), dx.data());
}

void bce_logits_forward(const Tensor& x, const Tensor& target, Tensor& loss) {
  const int64_t n = x.numel();
  reduce_all(n, BceTerm{x.data(), target.data()}, loss.data(), 1.f / static_cast<float>(n));
}

void bce_logits_backward(const Tensor& x, const Tensor& target, const Tensor& dloss, Tensor& dx) {
  linear_kernel(bce_backward_kernel, 0, stream(), x.numel(), x.data(), target.data(), dloss.data(), dx.data());
}

void cross_entropy_forward(const Tensor& logits, const Tensor& labels, Tensor& loss) {
  const int64_t N = logits.size(0), K = logits.size(1);
  DeviceBuffer<float> rows(static_cast<size_t>(N));
  if (N > 0) {
    EMBER_LAUNCH(blocks_for(N, kRowsPerBlock), kLinearBlock, 0, stream(), ce_rows_kernel)(
        N, K, logits.data(), labels.data(),
                                                                                rows.data());
    EMBER_CUDA_LAUNCH_CHECK();
  }
  reduce_all(N, RowTerm{rows.data()}, loss.data(), 1.f / static_cast<float>(N));
}

void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& dloss, Tensor& dlogits) {
  const int64_t N = logits.size(0), K = logits.size(1);
  if (N == 0) return;
  EMBER_LAUNCH(blocks_for(N, kRowsPerBlock), kLinearBlock, 0, stream(), ce_backward_kernel)(
      N, K, logits.data(), labels.data(),
                                                                                  dloss.data(), dlogits.data());
  EMBER_CUDA_LAUNCH_CHECK();
}

}  // namespace ember::cuda
