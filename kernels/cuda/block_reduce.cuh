// The warp- and block-wide reductions every kernel family uses (softmax, spectral norm, the
// attention weights; reached through kernels/cuda/common.cuh or included directly). Nothing here
// but CUDA built-ins and <cmath>, so the file also compiles as host C++ under the CPU emulation of
// CUDA that runs the attention device code in tests.
#pragma once
#include <cmath>

namespace ember::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
// max(a, b) that propagates NaN, as torch.maximum and clamp_min do (fmaxf returns the other
// operand when one is NaN, so a NaN would vanish from a max-reduction or an eps clamp).
__device__ __forceinline__ float nan_max(float a, float b) { return (a > b || a != a) ? a : b; }

struct MaxOp {
  __device__ float operator()(float a, float b) const { return nan_max(a, b); }
};

// Reduces over groups of `width` consecutive lanes (a power of two <= 32); every lane of a
// group gets the result (butterfly exchange). All 32 lanes of the warp must call it. The xor
// offsets stay below `width`, so no lane reads outside its group and the shuffle needs no width.
template <int width = 32, class Op>
__device__ __forceinline__ float group_reduce(float x, Op op) {
#pragma unroll
  for (int o = width / 2; o > 0; o /= 2) x = op(x, __shfl_xor_sync(kFullMask, x, o));
  return x;
}
template <int width = 32>
__device__ __forceinline__ float group_sum(float x) { return group_reduce<width>(x, SumOp{}); }
template <int width = 32>
__device__ __forceinline__ float group_max(float x) { return group_reduce<width>(x, MaxOp{}); }

// Block-wide reduction over all threads of a 1-, 2- or 3-D block whose size is a multiple of
// 32; every thread gets the result. `scratch` holds 32 floats of shared memory; the leading
// barrier lets consecutive calls reuse it. Warps are runs of 32 consecutive linear indices.
template <class Op>
__device__ __forceinline__ float block_reduce(float x, float* scratch, float identity, Op op) {
  const int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int lane = tid & 31, warp = tid >> 5, nwarps = (blockDim.x * blockDim.y * blockDim.z) >> 5;
  x = group_reduce(x, op);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  x = lane < nwarps ? scratch[lane] : identity;
  return group_reduce(x, op);
}
__device__ __forceinline__ float block_sum(float x, float* scratch) { return block_reduce(x, scratch, 0.0f, SumOp{}); }
__device__ __forceinline__ float block_max(float x, float* scratch) {
  return block_reduce(x, scratch, -INFINITY, MaxOp{});
}

}  // namespace ember::cuda
