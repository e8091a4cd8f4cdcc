// Elementwise maps shared by the elementwise, norm, pool and loss families.
//
// launch_map(f, n, out, in...):      out[i] = f(in0[i], in1[i], ...)
//   Four elements per thread; when every pointer is 16-byte aligned they move as one float4
//   (one 128-bit load per input, one store), the fastest way to stream memory on the GPU.
//   Inputs may alias the output: each element is read before it is written, by one thread.
// launch_channel_map(f, layout, out, in...):  out[n,c,k] = f(c, in0[n,c,k], ...)  for x [N, C, inner]
//   For per-channel parameters (bias, batch-norm scale and shift). Large planes get one block
//   row per (n, c) plane so c costs one division per block; small planes fall back to a flat
//   index with a division per element.
// Memory floor of both: (inputs + 1) * 4 bytes per element; nothing else is touched.
#pragma once
#include <utility>

#include "kernels/cuda/common.cuh"

namespace ember::cuda {

template <int K>
struct MapPtrs {
  const float* in[K > 0 ? K : 1];
  float* out;
};

template <class F, class... Pre, size_t... I>
__device__ __forceinline__ float apply_map(const F& f, const float* v, std::index_sequence<I...>, Pre... pre) {
  return f(pre..., v[I]...);
}

template <int K, class F>
__device__ __forceinline__ float4 map4(const F& f, const MapPtrs<K>& p, int64_t q) {
  float v[4][K > 0 ? K : 1];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    float4 t = reinterpret_cast<const float4*>(p.in[k])[q];
    v[0][k] = t.x, v[1][k] = t.y, v[2][k] = t.z, v[3][k] = t.w;
  }
  auto seq = std::make_index_sequence<K>();
  return make_float4(apply_map(f, v[0], seq), apply_map(f, v[1], seq), apply_map(f, v[2], seq),
                     apply_map(f, v[3], seq));
}

// Thread q handles elements [4q, 4q + 4) of n.
template <int K, class F>
__global__ void map_kernel(int64_t nquads, int64_t n, MapPtrs<K> p, bool vec, F f) {
  const int64_t q = global_index();
  if (q >= nquads) return;
  const int64_t i0 = q * 4;
  if (vec && i0 + 4 <= n) {
    reinterpret_cast<float4*>(p.out)[q] = map4<K>(f, p, q);
    return;
  }
  const int64_t end = i0 + 4 < n ? i0 + 4 : n;
  for (int64_t i = i0; i < end; ++i) {
    float v[K > 0 ? K : 1];
#pragma unroll
    for (int k = 0; k < K; ++k) v[k] = p.in[k][i];
    p.out[i] = apply_map(f, v, std::make_index_sequence<K>());
  }
}

template <class F, class... In>
void launch_map(const F& f, int64_t n, float* out, const In*... in) {
  constexpr int K = sizeof...(In);
  MapPtrs<K> p{{in...}, out};
  bool vec = aligned16(out);
  for (const float* ptr : {static_cast<const float*>(out), static_cast<const float*>(in)...})
    vec = vec && aligned16(ptr);
  linear_kernel(map_kernel<K, F>, 0, stream(), (n + 3) / 4, n, p, vec, f);
}

// One block row per (n, c) plane: blockIdx.x = plane, blockIdx.y strides over the plane.
template <int K, class F>
__global__ void channel_map_planes_kernel(int64_t C, int64_t inner, MapPtrs<K> p, bool vec, F f) {
  const int64_t plane = blockIdx.x;
  const int64_t c = plane % C;
  const int64_t base = plane * inner;
  auto seq = std::make_index_sequence<K>();
  if (vec) {  // inner % 4 == 0 and every pointer aligned
    const int64_t quads = inner / 4;
    for (int64_t q = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; q < quads;
         q += static_cast<int64_t>(gridDim.y) * blockDim.x) {
      float v[4][K];
#pragma unroll
      for (int k = 0; k < K; ++k) {
        float4 t = reinterpret_cast<const float4*>(p.in[k] + base)[q];
        v[0][k] = t.x, v[1][k] = t.y, v[2][k] = t.z, v[3][k] = t.w;
      }
      reinterpret_cast<float4*>(p.out + base)[q] = make_float4(apply_map(f, v[0], seq, c), apply_map(f, v[1], seq, c),
                                                               apply_map(f, v[2], seq, c), apply_map(f, v[3], seq, c));
    }
    return;
  }
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; i < inner;
       i += static_cast<int64_t>(gridDim.y) * blockDim.x) {
    float v[K];
#pragma unroll
    for (int k = 0; k < K; ++k) v[k] = p.in[k][base + i];
    p.out[base + i] = apply_map(f, v, seq, c);
  }
}

// Flat index: c = (i / inner) % C per element.
template <int K, class F>
__global__ void channel_map_flat_kernel(int64_t n, int64_t C, int64_t inner, MapPtrs<K> p, F f) {
  const int64_t i = global_index();
  if (i >= n) return;
  const int64_t c = (i / inner) % C;
  float v[K];
#pragma unroll
  for (int k = 0; k < K; ++k) v[k] = p.in[k][i];
  p.out[i] = apply_map(f, v, std::make_index_sequence<K>(), c);
}

template <class F, class... In>
void launch_channel_map(const F& f, const ChannelLayout& l, float* out, const In*... in) {
  constexpr int K = sizeof...(In);
  static_assert(K > 0, "launch_channel_map needs at least one input");
  const int64_t planes = l.N * l.C, n = planes * l.inner;
  if (n == 0) return;
  MapPtrs<K> p{{in...}, out};
  if (l.inner < 128) {
    linear_kernel(channel_map_flat_kernel<K, F>, 0, stream(), n, l.C, l.inner, p, f);
    return;
  }
  bool vec = l.inner % 4 == 0 && aligned16(out);
  for (const float* ptr : {static_cast<const float*>(in)...}) vec = vec && aligned16(ptr);
  const int64_t per_plane = vec ? l.inner / 4 : l.inner;
  const int64_t ychunks = (per_plane + kLinearBlock - 1) / kLinearBlock;
  EMBER_CHECK(planes < (int64_t(1) << 31), "channel map: " << planes << " (n, c) planes exceed the grid");
  dim3 grid(static_cast<unsigned>(planes), static_cast<unsigned>(ychunks < 65535 ? ychunks : 65535));
  EMBER_LAUNCH(grid, kLinearBlock, 0, stream(), channel_map_planes_kernel<K, F>)(l.C, l.inner, p, vec, f);
  EMBER_CUDA_LAUNCH_CHECK();
}

}  // namespace ember::cuda
