// Softmax over the last dimension on CUDA, forward and backward (kernels/softmax.inc).
//
// The algorithm. x is viewed as [rows, cols]; each row is independent:
//     m = max_j x_j,   s = sum_j exp(x_j - m),   y_j = exp(x_j - m) / s.
// Subtracting m keeps every exp() in (0, 1]; -inf entries give 0 and a row that is all -inf
// gives NaN, as in PyTorch. The backward is dx = y * (dy - <y, dy>), one dot product per row.
//
// The floor. Per element the forward does a handful of flops (max, sub, exp, add, mul) against
// 8 bytes of traffic (read x, write y); the backward reads y and dy and writes dx, 12 bytes.
// At H100's ~3 TB/s that is far below any arithmetic limit: softmax is bound by memory, and the
// best any kernel can do is move those bytes once at copy speed. Everything below is about
// reading each row from device memory exactly once and keeping enough loads in flight.
//
// The variants, chosen by row length (softmax_pick):
//   1. WarpRegisters (cols <= 1024): a warp per row -- or a group of 1..16 lanes per row when
//      rows are short -- each lane holding its slice of the row in registers. The max and the
//      sum are butterfly shuffles inside the group: no shared memory, no __syncthreads.
//   2. BlockShared (rows up to the shared-memory limit: (opt-in bytes - 1 KB) / 4 floats forward,
//      / 8 backward, rounded down to a multiple of 4 -- 57,856 / 28,928 on sm_90 (232,448 bytes),
//      41,472 / 20,736 on sm_80 (166,912 bytes)): a block per row; the first pass copies the row
//      into shared memory while taking the max, the next passes work from shared memory, so the
//      row is read from device memory once.
//   3. BlockStreaming (any length): a block per row, the row read twice from device memory.
//      The first pass keeps a running (max, sum) pair and rescales the sum whenever the max
//      grows (the "online softmax"), so max and sum take one pass, not two.
// Every variant moves 16 bytes per load/store (float4) when cols % 4 == 0 and the pointers are
// 16-byte aligned, else single floats.
//
// How to run them: tests/cuda/test_softmax.cpp checks each variant against the CPU reference
// over its whole range of row lengths; benchmarks/bench_softmax times each against the measured
// device-to-device copy bandwidth. docs/kernels.md (Softmax) walks through the design.
#include <climits>
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/softmax.cuh"
#ifndef EMBER_KERNELS_ONLY
#include "kernels/kernels.h"
#endif

namespace ember::cuda {

namespace {

constexpr float kNegInf = -INFINITY;
constexpr int kWarpBlock = 128;    // threads per block of variant 1 (4 warps)
// The block variants run 128..1024 threads (block_threads). __launch_bounds__ makes ptxas fit
// 1024 threads in the 65,536 registers of a block (at most 64 each); without it the backward
// kernels took 72 and 92 on sm_90 and could not launch at 1024 ("too many resources").
constexpr int kMaxBlock = 1024;
constexpr int kStaticSmem = 1024;  // shared memory the block variants use besides the row cache
constexpr int kUnroll = 4;         // packs a thread loads before using the first: loads in flight

// ---- packs: PACK consecutive floats moved by one instruction (16 bytes when PACK == 4) -------
template <int PACK>
__device__ __forceinline__ void load_pack(const float* p, float* dst) {
  if constexpr (PACK == 4) {
    const float4 t = *reinterpret_cast<const float4*>(p);
    dst[0] = t.x, dst[1] = t.y, dst[2] = t.z, dst[3] = t.w;
  } else {
#pragma unroll
    for (int i = 0; i < PACK; ++i) dst[i] = p[i];
  }
}
template <int PACK>
__device__ __forceinline__ void store_pack(float* p, const float* src) {
  if constexpr (PACK == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(src[0], src[1], src[2], src[3]);
  } else {
#pragma unroll
    for (int i = 0; i < PACK; ++i) p[i] = src[i];
  }
}

// ---- variant 1: GROUP lanes per row, the row in registers ------------------------------------
// Lane l of a group holds packs p = 0..PACKS-1 at columns (p * GROUP + l) * PACK: neighbouring
// lanes read neighbouring packs, so each load instruction of the warp is coalesced.
// There is no early return: the lanes of one warp may serve several rows and all of them must
// reach the shuffles; lanes past the last row just load and store nothing.
template <int PACK, int PACKS, int GROUP>
__global__ void __launch_bounds__(kWarpBlock)
    softmax_fwd_warp(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int cols) {
  constexpr int N = PACK * PACKS;
  const int lane = threadIdx.x % GROUP;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kWarpBlock / GROUP) + threadIdx.x / GROUP;
  const bool live = row < rows;
  const float* xr = x + (live ? row : 0) * cols;
  float* yr = y + (live ? row : 0) * cols;

  float v[N];  // this lane's slice of the row
#pragma unroll
  for (int p = 0; p < PACKS; ++p) {
    const int c = (p * GROUP + lane) * PACK;
    if (live && c < cols) {
      load_pack<PACK>(xr + c, v + p * PACK);
    } else {
#pragma unroll
      for (int i = 0; i < PACK; ++i) v[p * PACK + i] = kNegInf;  // contributes exp(-inf) = 0
    }
  }
  float m = kNegInf;
#pragma unroll
  for (int i = 0; i < N; ++i) m = fmaxf(m, v[i]);
  m = group_max<GROUP>(m);
  float s = 0.0f;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    v[i] = expf(v[i] - m);
    s += v[i];
  }
  const float inv = 1.0f / group_sum<GROUP>(s);
#pragma unroll
  for (int p = 0; p < PACKS; ++p) {
    const int c = (p * GROUP + lane) * PACK;
    if (live && c < cols) {
#pragma unroll
      for (int i = 0; i < PACK; ++i) v[p * PACK + i] *= inv;
      store_pack<PACK>(yr + c, v + p * PACK);
    }
  }
}

template <int PACK, int PACKS, int GROUP>
__global__ void __launch_bounds__(kWarpBlock) softmax_bwd_warp(const float* __restrict__ y,
                                                               const float* __restrict__ dy,
                                                               float* __restrict__ dx, int64_t rows, int cols) {
  constexpr int N = PACK * PACKS;
  const int lane = threadIdx.x % GROUP;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kWarpBlock / GROUP) + threadIdx.x / GROUP;
  const bool live = row < rows;
  const int64_t off = (live ? row : 0) * cols;

  float a[N], b[N];  // y and dy
#pragma unroll
  for (int p = 0; p < PACKS; ++p) {
    const int c = (p * GROUP + lane) * PACK;
    if (live && c < cols) {
      load_pack<PACK>(y + off + c, a + p * PACK);
      load_pack<PACK>(dy + off + c, b + p * PACK);
    } else {
#pragma unroll
      for (int i = 0; i < PACK; ++i) a[p * PACK + i] = b[p * PACK + i] = 0.0f;
    }
  }
  float dot = 0.0f;
#pragma unroll
  for (int i = 0; i < N; ++i) dot += a[i] * b[i];
  dot = group_sum<GROUP>(dot);
#pragma unroll
  for (int p = 0; p < PACKS; ++p) {
    const int c = (p * GROUP + lane) * PACK;
    if (live && c < cols) {
#pragma unroll
      for (int i = 0; i < PACK; ++i) a[p * PACK + i] *= b[p * PACK + i] - dot;
      store_pack<PACK>(dx + off + c, a + p * PACK);
    }
  }
}

// ---- variant 2: a block per row, the row cached in shared memory -----------------------------
// Each thread always handles the same columns (c = threadIdx.x * PACK + k * blockDim.x * PACK)
// in every pass, so it only ever reads back what it wrote itself: the cache needs no barrier;
// the barriers are those of the two block reductions.
template <int PACK>
__global__ void __launch_bounds__(kMaxBlock)
    softmax_fwd_block_shared(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int cols) {
  EMBER_DYNAMIC_SHARED(float4, smem_f4);  // float4: 16-byte alignment for the packed accesses
  float* cache = reinterpret_cast<float*>(smem_f4);  // (cols)
  EMBER_SHARED(float, scratch, [32]);
  const int step = blockDim.x * PACK;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * cols;
    float* yr = y + row * cols;
    float m = kNegInf;
    // Pass 1 issues kUnroll loads before the first is used, to keep enough bytes in flight.
    for (int c0 = threadIdx.x * PACK; c0 < cols; c0 += kUnroll * step) {
      float u[kUnroll][PACK];
#pragma unroll
      for (int k = 0; k < kUnroll; ++k)
        if (c0 + k * step < cols) load_pack<PACK>(xr + c0 + k * step, u[k]);
#pragma unroll
      for (int k = 0; k < kUnroll; ++k) {
        if (c0 + k * step < cols) {
          store_pack<PACK>(cache + c0 + k * step, u[k]);
#pragma unroll
          for (int i = 0; i < PACK; ++i) m = fmaxf(m, u[k][i]);
        }
      }
    }
    m = block_max(m, scratch);
    float t[PACK];
    float s = 0.0f;
    for (int c = threadIdx.x * PACK; c < cols; c += step) {
      load_pack<PACK>(cache + c, t);
#pragma unroll
      for (int i = 0; i < PACK; ++i) {
        t[i] = expf(t[i] - m);
        s += t[i];
      }
      store_pack<PACK>(cache + c, t);
    }
    const float inv = 1.0f / block_sum(s, scratch);
    for (int c = threadIdx.x * PACK; c < cols; c += step) {
      load_pack<PACK>(cache + c, t);
#pragma unroll
      for (int i = 0; i < PACK; ++i) t[i] *= inv;
      store_pack<PACK>(yr + c, t);
    }
  }
}

template <int PACK>
__global__ void __launch_bounds__(kMaxBlock)
    softmax_bwd_block_shared(const float* __restrict__ y, const float* __restrict__ dy, float* __restrict__ dx,
        int64_t rows, int cols) {
  EMBER_DYNAMIC_SHARED(float4, smem_f4);
  float* cy = reinterpret_cast<float*>(smem_f4);  // (cols)
  float* cdy = cy + cols;                          // (cols); 16-byte aligned as cols % PACK == 0
  EMBER_SHARED(float, scratch, [32]);
  const int step = blockDim.x * PACK;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t off = row * cols;
    float dot = 0.0f;
    for (int c0 = threadIdx.x * PACK; c0 < cols; c0 += kUnroll * step) {
      float ua[kUnroll][PACK], ub[kUnroll][PACK];
#pragma unroll
      for (int k = 0; k < kUnroll; ++k) {
        if (c0 + k * step < cols) {
          load_pack<PACK>(y + off + c0 + k * step, ua[k]);
          load_pack<PACK>(dy + off + c0 + k * step, ub[k]);
        }
      }
#pragma unroll
      for (int k = 0; k < kUnroll; ++k) {
        if (c0 + k * step < cols) {
          store_pack<PACK>(cy + c0 + k * step, ua[k]);
          store_pack<PACK>(cdy + c0 + k * step, ub[k]);
#pragma unroll
          for (int i = 0; i < PACK; ++i) dot += ua[k][i] * ub[k][i];
        }
      }
    }
    dot = block_sum(dot, scratch);
    float a[PACK], b[PACK];
    for (int c = threadIdx.x * PACK; c < cols; c += step) {
      load_pack<PACK>(cy + c, a);
      load_pack<PACK>(cdy + c, b);
#pragma unroll
      for (int i = 0; i < PACK; ++i) a[i] *= b[i] - dot;
      store_pack<PACK>(dx + off + c, a);
    }
  }
}

// ---- variant 3: a block per row, streaming with an online max and sum ------------------------
// (m, s) stands for the sum s * exp(m) of the exponentials seen so far. Merging two pairs
// rescales both sums to the larger max. While everything seen is -inf the pair stays
// (-inf, 0): the rescale exp(-inf - (-inf)) would be NaN.
struct MaxSum {
  float m, s;
};
__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.m, b.m);
  if (m == kNegInf) return {m, 0.0f};
  return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ __forceinline__ MaxSum block_merge(MaxSum v, float* sm, float* ss) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o /= 2)
    v = merge(v, {__shfl_xor_sync(kFullMask, v.m, o), __shfl_xor_sync(kFullMask, v.s, o)});
  __syncthreads();
  if (lane == 0) sm[warp] = v.m, ss[warp] = v.s;
  __syncthreads();
  v = lane < nwarps ? MaxSum{sm[lane], ss[lane]} : MaxSum{kNegInf, 0.0f};
#pragma unroll
  for (int o = 16; o > 0; o /= 2)
    v = merge(v, {__shfl_xor_sync(kFullMask, v.m, o), __shfl_xor_sync(kFullMask, v.s, o)});
  return v;
}

template <int PACK>
__global__ void __launch_bounds__(kMaxBlock)
    softmax_fwd_block_streaming(const float* __restrict__ x, float* __restrict__ y, int64_t rows, int64_t cols) {
  EMBER_SHARED(float, sm, [32]);
  EMBER_SHARED(float, ss, [32]);
  const int64_t step = static_cast<int64_t>(blockDim.x) * PACK;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * cols;
    float* yr = y + row * cols;
    MaxSum acc{kNegInf, 0.0f};
    for (int64_t c0 = threadIdx.x * PACK; c0 < cols; c0 += kUnroll * step) {
      float t[kUnroll][PACK];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = c0 + u * step;
        if (c < cols) {
          load_pack<PACK>(xr + c, t[u]);
        } else {
#pragma unroll
          for (int i = 0; i < PACK; ++i) t[u][i] = kNegInf;
        }
      }
      float pm = kNegInf;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int i = 0; i < PACK; ++i) pm = fmaxf(pm, t[u][i]);
      if (pm == kNegInf) continue;  // nothing but -inf here: adds 0
      float ps = 0.0f;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int i = 0; i < PACK; ++i) ps += expf(t[u][i] - pm);
      acc = merge(acc, {pm, ps});
    }
    acc = block_merge(acc, sm, ss);
    // An all -inf row ends with m = -inf: exp(x - m) = NaN below, PyTorch's answer.
    const float inv = 1.0f / acc.s;
    for (int64_t c0 = threadIdx.x * PACK; c0 < cols; c0 += kUnroll * step) {
      float t[kUnroll][PACK];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        if (c0 + u * step < cols) load_pack<PACK>(xr + c0 + u * step, t[u]);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (c0 + u * step < cols) {
#pragma unroll
          for (int i = 0; i < PACK; ++i) t[u][i] = expf(t[u][i] - acc.m) * inv;
          store_pack<PACK>(yr + c0 + u * step, t[u]);
        }
      }
    }
  }
}

template <int PACK>
__global__ void __launch_bounds__(kMaxBlock)
    softmax_bwd_block_streaming(const float* __restrict__ y, const float* __restrict__ dy, float* __restrict__ dx,
        int64_t rows, int64_t cols) {
  EMBER_SHARED(float, scratch, [32]);
  const int64_t step = static_cast<int64_t>(blockDim.x) * PACK;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t off = row * cols;
    float dot = 0.0f;
    for (int64_t c0 = threadIdx.x * PACK; c0 < cols; c0 += kUnroll * step) {
      float a[kUnroll][PACK], b[kUnroll][PACK];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (c0 + u * step < cols) {
          load_pack<PACK>(y + off + c0 + u * step, a[u]);
          load_pack<PACK>(dy + off + c0 + u * step, b[u]);
        } else {
#pragma unroll
          for (int i = 0; i < PACK; ++i) a[u][i] = b[u][i] = 0.0f;
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int i = 0; i < PACK; ++i) dot += a[u][i] * b[u][i];
    }
    dot = block_sum(dot, scratch);
    for (int64_t c0 = threadIdx.x * PACK; c0 < cols; c0 += kUnroll * step) {
      float a[kUnroll][PACK], b[kUnroll][PACK];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (c0 + u * step < cols) {
          load_pack<PACK>(y + off + c0 + u * step, a[u]);
          load_pack<PACK>(dy + off + c0 + u * step, b[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (c0 + u * step < cols) {
#pragma unroll
          for (int i = 0; i < PACK; ++i) a[u][i] *= b[u][i] - dot;
          store_pack<PACK>(dx + off + c0 + u * step, a[u]);
        }
      }
    }
  }
}

// ---- launchers ---------------------------------------------------------------------------------

// Variant 1's shape for a row of `cols`: lanes per row and packs per lane. Short rows share a
// warp (GROUP < 32); longer ones give each lane up to 8 float4 packs (or 32 floats).
template <int PACK, class Launch>
void dispatch_warp(const Launch& l, int cols) {
  const int packs = (cols + PACK - 1) / PACK;
  if (packs <= 1) return l.template run<PACK, 1, 1>();
  if (packs <= 2) return l.template run<PACK, 1, 2>();
  if (packs <= 4) return l.template run<PACK, 1, 4>();
  if (packs <= 8) return l.template run<PACK, 1, 8>();
  if (packs <= 16) return l.template run<PACK, 1, 16>();
  if (packs <= 32) return l.template run<PACK, 1, 32>();
  if (packs <= 64) return l.template run<PACK, 2, 32>();
  if (packs <= 128) return l.template run<PACK, 4, 32>();
  if (packs <= 256) return l.template run<PACK, 8, 32>();
  if constexpr (PACK == 1) {
    if (packs <= 512) return l.template run<PACK, 16, 32>();
    if (packs <= 1024) return l.template run<PACK, 32, 32>();
  }
  EMBER_FAIL("softmax (CUDA): the warp variant takes rows up to 1024, got " << cols);
}

unsigned grid_for(int64_t blocks) {
  EMBER_CHECK(blocks <= INT_MAX, "softmax (CUDA): " << blocks << " blocks exceed the grid limit");
  return static_cast<unsigned>(blocks);
}

struct FwdWarp {
  const float* x;
  float* y;
  int64_t rows;
  int cols;
  cudaStream_t st;
  template <int PACK, int PACKS, int GROUP>
  void run() const {
    const unsigned grid = grid_for(ceil_div(rows, kWarpBlock / GROUP));
    EMBER_LAUNCH(grid, kWarpBlock, 0, st, softmax_fwd_warp<PACK, PACKS, GROUP>)(x, y, rows, cols);
  }
};

struct BwdWarp {
  const float* y;
  const float* dy;
  float* dx;
  int64_t rows;
  int cols;
  cudaStream_t st;
  template <int PACK, int PACKS, int GROUP>
  void run() const {
    const unsigned grid = grid_for(ceil_div(rows, kWarpBlock / GROUP));
    EMBER_LAUNCH(grid, kWarpBlock, 0, st, softmax_bwd_warp<PACK, PACKS, GROUP>)(y, dy, dx, rows, cols);
  }
};

// Threads of a block-per-row variant: about `per_thread` packs each, 128..1024 threads.
int block_threads(int64_t packs, int per_thread) {
  int t = 128;
  while (t < kMaxBlock && static_cast<int64_t>(t) * per_thread < packs) t *= 2;
  return t;
}

// One block per row, at most 2^31 - 1 blocks (the kernels loop over further rows).
unsigned row_grid(int64_t rows) { return static_cast<unsigned>(rows < INT_MAX ? rows : INT_MAX); }

// Bytes of row cache BlockShared needs per float of row length.
size_t shared_bytes_per_col(bool backward) { return backward ? 2 * sizeof(float) : sizeof(float); }

}  // namespace

const char* softmax_variant_name(SoftmaxVariant v) {
  switch (v) {
    case SoftmaxVariant::Auto: return "auto";
    case SoftmaxVariant::WarpRegisters: return "warp-registers";
    case SoftmaxVariant::BlockShared: return "block-shared";
    case SoftmaxVariant::BlockStreaming: return "block-streaming";
  }
  return "?";
}

int64_t softmax_max_cols(SoftmaxVariant v, bool backward) {
  switch (v) {
    case SoftmaxVariant::WarpRegisters: return 1024;
    case SoftmaxVariant::BlockShared:
      // Rounded down to a multiple of 4 so that a row that fits keeps 16-byte alignment.
      return ((device_info().max_smem_optin - kStaticSmem) / static_cast<int64_t>(shared_bytes_per_col(backward))) & ~int64_t{3};
    default: return -1;
  }
}

SoftmaxVariant softmax_pick(int64_t cols, bool backward) {
  if (cols <= softmax_max_cols(SoftmaxVariant::WarpRegisters, backward)) return SoftmaxVariant::WarpRegisters;
  if (cols <= softmax_max_cols(SoftmaxVariant::BlockShared, backward)) return SoftmaxVariant::BlockShared;
  return SoftmaxVariant::BlockStreaming;
}

namespace {
void check_launch_args(const char* op, int64_t rows, int64_t cols, SoftmaxVariant v, bool backward) {
  EMBER_CHECK(rows >= 0 && cols >= 0, op << ": negative shape rows " << rows << ", cols " << cols);
  EMBER_CHECK(cols <= INT_MAX, op << ": rows of " << cols << " elements exceed " << INT_MAX);
  const int64_t limit = softmax_max_cols(v, backward);
  EMBER_CHECK(limit < 0 || cols <= limit, op << ": variant " << softmax_variant_name(v) << " takes rows up to "
                                             << limit << " elements, got " << cols);
}
}  // namespace

void softmax_forward_launch(const float* x, float* y, int64_t rows, int64_t cols, SoftmaxVariant v,
                            cudaStream_t st) {
  cuda_rt::check_stream(st, "softmax_forward_launch");
  if (v == SoftmaxVariant::Auto) v = softmax_pick(cols, false);
  check_launch_args("softmax forward (CUDA)", rows, cols, v, false);
  if (rows == 0 || cols == 0) return;
  const bool vec = cols % 4 == 0 && aligned16(x) && aligned16(y);
  const int c = static_cast<int>(cols);
  switch (v) {
    case SoftmaxVariant::WarpRegisters:
      if (vec) dispatch_warp<4>(FwdWarp{x, y, rows, c, st}, c);
      else dispatch_warp<1>(FwdWarp{x, y, rows, c, st}, c);
      break;
    case SoftmaxVariant::BlockShared: {
      const size_t bytes = static_cast<size_t>(cols) * shared_bytes_per_col(false);
      if (vec) {
        allow_smem(softmax_fwd_block_shared<4>, bytes);
        EMBER_LAUNCH(row_grid(rows), block_threads(cols / 4, 4), bytes, st, softmax_fwd_block_shared<4>)(x, y, rows, c);
      } else {
        allow_smem(softmax_fwd_block_shared<1>, bytes);
        EMBER_LAUNCH(row_grid(rows), block_threads(cols, 4), bytes, st, softmax_fwd_block_shared<1>)(x, y, rows, c);
      }
      break;
    }
    default:
      if (vec)
        EMBER_LAUNCH(row_grid(rows), block_threads(cols / 4, 8), 0, st, softmax_fwd_block_streaming<4>)(
            x, y, rows, cols);
      else
        EMBER_LAUNCH(row_grid(rows), block_threads(cols, 8), 0, st, softmax_fwd_block_streaming<1>)(x, y, rows, cols);
      break;
  }
  EMBER_CUDA_LAUNCH_CHECK("softmax forward");
}

void softmax_backward_launch(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols,
                             SoftmaxVariant v, cudaStream_t st) {
  cuda_rt::check_stream(st, "softmax_backward_launch");
  if (v == SoftmaxVariant::Auto) v = softmax_pick(cols, true);
  check_launch_args("softmax backward (CUDA)", rows, cols, v, true);
  if (rows == 0 || cols == 0) return;
  const bool vec = cols % 4 == 0 && aligned16(y) && aligned16(dy) && aligned16(dx);
  const int c = static_cast<int>(cols);
  switch (v) {
    case SoftmaxVariant::WarpRegisters:
      if (vec) dispatch_warp<4>(BwdWarp{y, dy, dx, rows, c, st}, c);
      else dispatch_warp<1>(BwdWarp{y, dy, dx, rows, c, st}, c);
      break;
    case SoftmaxVariant::BlockShared: {
      const size_t bytes = static_cast<size_t>(cols) * shared_bytes_per_col(true);
      if (vec) {
        allow_smem(softmax_bwd_block_shared<4>, bytes);
        EMBER_LAUNCH(row_grid(rows), block_threads(cols / 4, 4), bytes, st, softmax_bwd_block_shared<4>)(
            y, dy, dx, rows, c);
      } else {
        allow_smem(softmax_bwd_block_shared<1>, bytes);
        EMBER_LAUNCH(row_grid(rows), block_threads(cols, 4), bytes, st, softmax_bwd_block_shared<1>)(
            y, dy, dx, rows, c);
      }
      break;
    }
    default:
      if (vec)
        EMBER_LAUNCH(row_grid(rows), block_threads(cols / 4, 8), 0, st, softmax_bwd_block_streaming<4>)(
            y, dy, dx, rows, cols);
      else
        EMBER_LAUNCH(row_grid(rows), block_threads(cols, 8), 0, st, softmax_bwd_block_streaming<1>)(
            y, dy, dx, rows, cols);
      break;
  }
  EMBER_CUDA_LAUNCH_CHECK("softmax backward");
}

}  // namespace ember::cuda

#ifndef EMBER_KERNELS_ONLY  // the kernel lab (kernels/lab/) runs the launchers above without tensors
// ---- the Tensor-level kernels of kernels/softmax.inc ------------------------------------------
namespace ember::cuda {

namespace {
int64_t last_dim(const Tensor& t) { return t.dim() == 0 ? 1 : t.size(t.dim() - 1); }
}  // namespace

void softmax_forward(const Tensor& x, Tensor& y) {
  const int64_t cols = last_dim(x);
  if (cols == 0 || x.numel() == 0) return;
  softmax_forward_launch(x.data(), y.data(), x.numel() / cols, cols, SoftmaxVariant::Auto,
                                stream());
}

void softmax_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  const int64_t cols = last_dim(y);
  if (cols == 0 || y.numel() == 0) return;
  softmax_backward_launch(y.data(), dy.data(), dx.data(), y.numel() / cols, cols,
                                 SoftmaxVariant::Auto, stream());
}

}  // namespace ember::cuda
#endif  // EMBER_KERNELS_ONLY
