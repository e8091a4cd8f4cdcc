// Deterministic reductions shared by the reduce, elementwise (bias_grad, gamma_residual), norm
// and loss families. No float atomics anywhere: every sum is a fixed tree, so a result depends
// only on the input and the device (its SM count sizes the grids), never on timing.
//
// Accumulators (plain structs, usable in shared memory): Sum, Sum2 (two sums at once), Welford
// (count, mean, M2: numerically stable mean and variance, merged with Chan et al.'s formula).
//
// reduce_channels(layout, load, finish):  for x [N, C, inner], per channel c, folds load(i, c)
//   over the N * inner elements i of that channel and calls finish(c, acc) in a final kernel.
//   Pass 1: grid (splits, C), each block folds a slice of rows n, threads arranged TX x TY over
//   (k, n) so that each row's contiguous plane is read coalesced; block tree -> partial[c][split].
//   Pass 2: one thread per channel merges its partials in split order.
// reduce_all(n, value, out, scale): out[0] = scale * sum_i value(i), same two passes.
// Memory floor: one read of the input; the partials are a few KB.
#pragma once
#include "kernels/cuda/common.cuh"

namespace ember::cuda {

constexpr int kReduceBlock = 256;

struct SumAcc {
  float s;
  __device__ static SumAcc zero() { return {0.f}; }
  __device__ void add(float v) { s += v; }
  __device__ static SumAcc merge(const SumAcc& a, const SumAcc& b) { return {a.s + b.s}; }
};

struct Sum2Acc {
  float a, b;
  __device__ static Sum2Acc zero() { return {0.f, 0.f}; }
  __device__ void add(float2 v) { a += v.x, b += v.y; }
  __device__ static Sum2Acc merge(const Sum2Acc& x, const Sum2Acc& y) { return {x.a + y.a, x.b + y.b}; }
};

struct WelfordAcc {
  int64_t n;
  float mean, m2;
  __device__ static WelfordAcc zero() { return {0, 0.f, 0.f}; }
  __device__ void add(float x) {
    n += 1;
    float d = x - mean;
    mean += d / static_cast<float>(n);
    m2 += d * (x - mean);
  }
  __device__ static WelfordAcc merge(const WelfordAcc& a, const WelfordAcc& b) {
    if (a.n == 0) return b;
    if (b.n == 0) return a;
    const int64_t n = a.n + b.n;
    const float fb = static_cast<float>(b.n) / static_cast<float>(n);
    const float d = b.mean - a.mean;
    return {n, a.mean + d * fb, a.m2 + b.m2 + d * d * static_cast<float>(a.n) * fb};
  }
};

// Tree over the threads of a 1-D block of kReduceBlock threads; the total is valid in thread 0.
// Unlike block_reduce (block_reduce.cuh: floats, by warp shuffles, every thread gets the result)
// it merges accumulator structs (Welford's three fields) through shared memory.
template <class Acc>
__device__ Acc block_tree_reduce(Acc v) {
  EMBER_SHARED(Acc, sh, [kReduceBlock]);
  const int t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
#pragma unroll
  for (int s = kReduceBlock / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] = Acc::merge(sh[t], sh[t + s]);
    __syncthreads();
  }
  return sh[0];
}

// ---- per-channel reduction over x [N, C, inner] ---------------------------------------------

template <class Acc, class Load>
__global__ void channel_partials_kernel(int64_t N, int64_t C, int64_t inner, int tx_log2, int64_t rows_per_split,
                                        Load load, Acc* partial) {
  const int split = blockIdx.x, splits = gridDim.x;
  const int64_t c = blockIdx.y;
  const int tx_count = 1 << tx_log2, ty_count = kReduceBlock >> tx_log2;
  const int tx = threadIdx.x & (tx_count - 1), ty = threadIdx.x >> tx_log2;
  const int64_t n0 = split * rows_per_split;
  const int64_t n1 = n0 + rows_per_split < N ? n0 + rows_per_split : N;
  Acc acc = Acc::zero();
  for (int64_t n = n0 + ty; n < n1; n += ty_count) {
    const int64_t base = (n * C + c) * inner;
    for (int64_t k = tx; k < inner; k += tx_count) acc.add(load(base + k, c));
  }
  acc = block_tree_reduce(acc);
  if (threadIdx.x == 0) partial[c * splits + split] = acc;
}

template <class Acc, class Finish>
__global__ void channel_finish_kernel(int64_t C, int splits, const Acc* partial, Finish finish) {
  const int64_t c = global_index();
  if (c >= C) return;
  Acc acc = partial[c * splits];
  for (int s = 1; s < splits; ++s) acc = Acc::merge(acc, partial[c * splits + s]);
  finish(c, acc);
}

template <class Acc, class Load, class Finish>
void reduce_channels(const ChannelLayout& l, const Load& load, const Finish& finish) {
  if (l.C == 0) return;
  EMBER_CHECK(l.C <= 65535, "channel reduction: " << l.C << " channels exceed the grid (65535)");
  // Enough blocks to fill the device twice over, each folding at least ~16 elements per thread.
  const int64_t per_channel = l.N * l.inner;
  const int64_t want = (2 * cuda_rt::state().sm_count + l.C - 1) / l.C;
  const int64_t by_work = (per_channel + 16 * kReduceBlock - 1) / (16 * kReduceBlock);
  int64_t splits = want < by_work ? want : by_work;
  if (splits > l.N) splits = l.N;
  if (splits < 1) splits = 1;
  const int64_t rows_per_split = l.N == 0 ? 1 : (l.N + splits - 1) / splits;
  splits = l.N == 0 ? 1 : (l.N + rows_per_split - 1) / rows_per_split;  // no empty splits
  const int tx = pow2_at_least(l.inner, kReduceBlock);
  int tx_log2 = 0;
  while ((1 << tx_log2) < tx) ++tx_log2;

  DeviceBuffer<Acc> partial(static_cast<size_t>(l.C * splits));
  dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(l.C));
  EMBER_LAUNCH(grid, kReduceBlock, 0, stream(), channel_partials_kernel<Acc, Load>)(
      l.N, l.C, l.inner, tx_log2, rows_per_split, load, partial.data());
  EMBER_CUDA_LAUNCH_CHECK();
  linear_kernel(channel_finish_kernel<Acc, Finish>, 0, stream(), l.C, static_cast<int>(splits),
                static_cast<const Acc*>(partial.data()), finish);
}

// ---- reduction of all elements to one number --------------------------------------------------

template <class Value>
__global__ void sum_partials_kernel(int64_t n, Value value, float* partial) {
  SumAcc acc = SumAcc::zero();
  for (int64_t i = global_index(); i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) acc.add(value(i));
  acc = block_tree_reduce(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc.s;
}

// One block: each thread folds a strided subset of the partials in order, then the block tree.
// (A template only so that each .cu file gets its own copy without relocatable device code.)
template <class T>
__global__ void sum_finish_kernel(int parts, const T* partial, T scale, T* out) {
  SumAcc acc = SumAcc::zero();
  for (int i = threadIdx.x; i < parts; i += blockDim.x) acc.add(partial[i]);
  acc = block_tree_reduce(acc);
  if (threadIdx.x == 0) out[0] = scale * acc.s;
}

template <class Value>
void reduce_all(int64_t n, const Value& value, float* out, float scale) {
  const int64_t max_blocks = 2 * cuda_rt::state().sm_count;
  int64_t blocks = (n + 16 * kReduceBlock - 1) / (16 * kReduceBlock);
  if (blocks > max_blocks) blocks = max_blocks;
  if (blocks < 1) blocks = 1;
  DeviceBuffer<float> partial(static_cast<size_t>(blocks));
  EMBER_LAUNCH(static_cast<unsigned>(blocks), kReduceBlock, 0, stream(), sum_partials_kernel<Value>)(
      n, value, partial.data());
  EMBER_CUDA_LAUNCH_CHECK();
  EMBER_LAUNCH(1, kReduceBlock, 0, stream(), sum_finish_kernel<float>)(
      static_cast<int>(blocks), partial.data(), scale, out);
  EMBER_CUDA_LAUNCH_CHECK();
}

}  // namespace ember::cuda
