// CUDA reductions (kernels/reduce.inc; reference: kernels/cpu/reduce.cpp).
//
// sum_mid: x viewed as [outer, mid, inner] -> y [outer, inner], summed over mid.
//   Algorithm: a block of 256 threads owns TX consecutive columns i of one row o
//   (TX = next power of two >= inner, at most 32) and TY = 256 / TX threads stride over mid,
//   so a warp reads whole contiguous runs of rows (inner == 1 gives 256 threads on one row).
//   When that leaves the device idle (few outputs, long mid), mid is cut into `splits`
//   slices, each block writes a partial sum and a second kernel adds the partials in order.
//   Very short mids (<= 16) use one thread per output instead. Deterministic: fixed trees.
//   Floor: one read of x plus one write of y; ~1 FLOP per 4 bytes, so memory-bound.
// broadcast_mid: dx[o, m, i] = scale * dy[o, i]; floor: one write of dx (dy stays in cache).
#include "kernels/cuda/common.cuh"

namespace ember::cuda {

namespace {

constexpr int kBlock = 256;

__global__ void sum_short_mid_kernel(int64_t n_out, const float* x, int64_t mid, int64_t inner, float* y) {
  const int64_t j = global_index();
  if (j >= n_out) return;
  const int64_t o = j / inner, i = j % inner;
  const float* p = x + o * mid * inner + i;
  float s = 0.f;
  for (int64_t m = 0; m < mid; ++m) s += p[m * inner];
  y[j] = s;
}

// blockIdx.x = (o, column tile), blockIdx.y = slice of mid. Writes out[(slice * outer + o) * inner + i].
__global__ void sum_tiles_kernel(const float* x, int64_t outer, int64_t mid, int64_t inner, int tx_log2,
                                 int64_t mid_per_split, float* out) {
  EMBER_SHARED(float, sh, [kBlock]);
  const int tx_count = 1 << tx_log2, ty_count = kBlock >> tx_log2;
  const int tx = threadIdx.x & (tx_count - 1), ty = threadIdx.x >> tx_log2;
  const int64_t tiles = (inner + tx_count - 1) / tx_count;
  const int64_t o = blockIdx.x / tiles;
  const int64_t i = (blockIdx.x % tiles) * tx_count + tx;
  const int64_t m0 = blockIdx.y * mid_per_split;
  const int64_t m1 = m0 + mid_per_split < mid ? m0 + mid_per_split : mid;
  float s = 0.f;
  if (i < inner) {
    const float* p = x + o * mid * inner + i;
    for (int64_t m = m0 + ty; m < m1; m += ty_count) s += p[m * inner];
  }
  // Tree over ty (threads tx, tx + TX, tx + 2 TX, ... hold the same column).
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int stride = kBlock / 2; stride >= tx_count; stride >>= 1) {
    if (threadIdx.x < stride) sh[threadIdx.x] += sh[threadIdx.x + stride];
    __syncthreads();
  }
  if (ty == 0 && i < inner) out[(blockIdx.y * outer + o) * inner + i] = sh[tx];
}

__global__ void sum_slices_kernel(int64_t n_out, const float* partial, int splits, float* y) {
  const int64_t j = global_index();
  if (j >= n_out) return;
  float s = partial[j];
  for (int k = 1; k < splits; ++k) s += partial[k * n_out + j];
  y[j] = s;
}

template <class Index>
__global__ void broadcast_mid_kernel(int64_t n, const float* dy, Index mid, Index inner, float scale, float* dx) {
  const int64_t k64 = global_index();
  if (k64 >= n) return;
  const Index k = static_cast<Index>(k64);
  const Index o = k / (mid * inner), i = k % inner;
  dx[k] = scale * dy[o * inner + i];
}

}  // namespace

void sum_mid(const Tensor& x, int64_t outer, int64_t mid, int64_t inner, Tensor& y) {
  const int64_t n_out = outer * inner;
  if (n_out == 0) return;
  if (mid == 0) {
    fill(y, 0.f);
    return;
  }
  if (mid <= 16) {
    linear_kernel(sum_short_mid_kernel, 0, stream(), n_out, x.data(), mid, inner, y.data());
    return;
  }
  const int tx = pow2_at_least(inner, 32);
  int tx_log2 = 0;
  while ((1 << tx_log2) < tx) ++tx_log2;
  const int ty = kBlock / tx;
  const int64_t tiles = outer * ((inner + tx - 1) / tx);
  EMBER_CHECK(tiles < (int64_t(1) << 31), "sum_mid: " << tiles << " tiles exceed the grid");
  // Slices: enough blocks for two waves, each thread still folding >= 8 rows.
  const int64_t want = (2 * cuda_rt::state().sm_count + tiles - 1) / tiles;
  const int64_t by_work = (mid + 8 * ty - 1) / (8 * ty);
  int64_t splits = want < by_work ? want : by_work;
  if (splits > 65535) splits = 65535;
  if (splits < 1) splits = 1;
  const int64_t mid_per_split = (mid + splits - 1) / splits;
  splits = (mid + mid_per_split - 1) / mid_per_split;

  dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(splits));
  if (splits == 1) {
    EMBER_LAUNCH(grid, kBlock, 0, stream(), sum_tiles_kernel)(
        x.data(), outer, mid, inner, tx_log2, mid_per_split, y.data());
    EMBER_CUDA_LAUNCH_CHECK();
    return;
  }
  DeviceBuffer<float> partial(static_cast<size_t>(splits * n_out));
  EMBER_LAUNCH(grid, kBlock, 0, stream(), sum_tiles_kernel)(
      x.data(), outer, mid, inner, tx_log2, mid_per_split, partial.data());
  EMBER_CUDA_LAUNCH_CHECK();
  linear_kernel(sum_slices_kernel, 0, stream(), n_out, static_cast<const float*>(partial.data()),
                static_cast<int>(splits), y.data());
}

void broadcast_mid(const Tensor& dy, int64_t outer, int64_t mid, int64_t inner, float scale, Tensor& dx) {
  const int64_t n = outer * mid * inner;
  if (n == 0) return;
  // 32-bit index arithmetic when it fits: a 64-bit division costs several times more.
  if (n < (int64_t(1) << 31))
    linear_kernel(broadcast_mid_kernel<uint32_t>, 0, stream(), n, dy.data(), static_cast<uint32_t>(mid),
                  static_cast<uint32_t>(inner), scale, dx.data());
  else
    linear_kernel(broadcast_mid_kernel<int64_t>, 0, stream(), n, dy.data(), mid, inner, scale, dx.data());
}

}  // namespace ember::cuda
