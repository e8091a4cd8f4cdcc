// What every kernels/cuda/*.cu file includes: the kernel declarations (kernels/kernels.h), the
// CUDA context (stream, handles, temporary buffers) and the checks and launch helper.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/check.cuh"
#include "core/cuda/cuda_context.cuh"
#include "kernels/kernels.h"

namespace ember::cuda {

using cuda_rt::blocks_for;
using cuda_rt::DeviceBuffer;
using cuda_rt::global_index;
using cuda_rt::kLinearBlock;
using cuda_rt::linear_kernel;
using cuda_rt::stream;

// float4 loads and stores need 16-byte alignment; tensors at an offset into a storage may lack it.
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The smallest power of two >= v (v >= 1), at most `cap`.
inline int pow2_at_least(int64_t v, int cap) {
  int p = 1;
  while (p < v && p < cap) p *= 2;
  return p;
}

// For x [N, C, *]: N, C and the size of one (n, c) plane (1 when x is [N, C]).
struct ChannelLayout {
  int64_t N, C, inner;
};
inline ChannelLayout channel_layout(const Tensor& x) {
  ChannelLayout l{x.size(0), x.size(1), 1};
  if (l.N * l.C > 0) l.inner = x.numel() / (l.N * l.C);
  return l;
}

}  // namespace ember::cuda
