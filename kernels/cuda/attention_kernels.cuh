// Device code of the fused attention kernels (see kernels/cuda/attention.cu for the algorithm, the
// variants and the FLOP and byte counts): the warp-level product, the tile loads and the __global__
// kernels. Included by attention.cu only. Like every kernel file it also runs on the CPU in the
// emulated build (tests/emulation, docs/emulation.md), where mma_tf32 and to_tf32 follow the PTX ISA.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/cuda/check.cuh"
#include "core/error.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/block_reduce.cuh"

namespace ember::cuda {
namespace {

enum class Prec { kSimt, kTf32, kTf32x3 };

constexpr int kWarpRows = 16;    // block-tile rows one warp owns (the mma's M)
constexpr int kMaxWarps = 4;     // 128 threads per block
constexpr int kBN = 32;          // width of the streamed tile: keys (forward, dq) or queries (dk, dv)
constexpr int kLdKN = kBN + 8;   // row stride of [k][n] tiles with n = kBN: conflict-free B reads
constexpr int kLdNK = kBN + 4;   // row stride of [n][k] and [r][k] tiles with k = kBN
constexpr int kDvChunk = 128;    // value channels per block in the forward and dv kernels (grid.y)
constexpr int kDChunk = 64;      // channels per streamed step of the dP = dO . v product
constexpr int kMaxDk = 64;       // head dims up to 64 (the dk / dq accumulators hold 64 channels)
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__host__ __device__ constexpr int round8(int x) { return (x + 7) / 8 * 8; }
// Row stride of a tile resident in shared memory with `rows` positions per channel row: +8 floats
// so that 4 consecutive channel rows start in banks 0, 8, 16, 24 (conflict-free fragment reads).
__host__ __device__ constexpr int resident_ld(int rows) { return rows + 8; }

// ---- the warp-level product -------------------------------------------------------------------

// A read-only matrix view of shared memory: element (r, c) at p[r * rs + c * cs].
struct Tile {
  const float* p;
  int rs, cs;
  __device__ __forceinline__ float operator()(int r, int c) const { return p[r * rs + c * cs]; }
};

#ifdef EMBER_EMULATION
using ::ember::emu::mma_tf32;  // tests/emulation: the PTX ISA's definitions on the CPU
using ::ember::emu::to_tf32;
#else
// x rounded to TF32 (10 mantissa bits, round to nearest, ties away), as an fp32 bit pattern. The PTX
// ISA leaves the low 13 bits of the cvt result unspecified: they are masked off here because the
// 3xTF32 split reads the result back as a float (lo = x - hi) and must see exactly the rounded value.
__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r & 0xffffe000u;
}

// c += a * b on the tensor cores, m16n8k8, TF32 inputs, fp32 accumulators (sm_80 and later).
__device__ __forceinline__ void mma_tf32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // the host never picks a tensor-core variant below sm_80
#endif
}
#endif  // EMBER_EMULATION

// C[16 x 8 NT] += A[16 x K] B[K x 8 NT] for one warp; A(r, k) and B(k, n) are shared-memory views,
// K is a multiple of 8 and only the first nt_active column tiles are computed (warp-uniform).
// Every lane owns the m16n8 accumulator layout of the PTX ISA, g = lane / 4, q = lane % 4:
//   c[t][0] = C(g, 8t + 2q)   c[t][1] = C(g, 8t + 2q + 1)   c[t][2], c[t][3]: the same at row g + 8.
// The mma fragments: A = {(g, q), (g+8, q), (g, q+4), (g+8, q+4)}, B = {(q, g), (q+4, g)} per k-step.
// The Simt variant computes the same elements with FMAs, so all variants share every index outside.
template <Prec P, int NT>
__device__ __forceinline__ void warp_mma(float (&c)[NT][4], Tile A, Tile B, int K, int nt_active) {
  const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  if constexpr (P == Prec::kSimt) {
#pragma unroll 2
    for (int k = 0; k < K; ++k) {
      const float a0 = A(g, k), a1 = A(g + 8, k);
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        if (t < nt_active) {
          const float b0 = B(k, 8 * t + 2 * q), b1 = B(k, 8 * t + 2 * q + 1);
          c[t][0] = fmaf(a0, b0, c[t][0]);
          c[t][1] = fmaf(a0, b1, c[t][1]);
          c[t][2] = fmaf(a1, b0, c[t][2]);
          c[t][3] = fmaf(a1, b1, c[t][3]);
        }
      }
    }
  } else {
    for (int k0 = 0; k0 < K; k0 += 8) {
      const float a[4] = {A(g, k0 + q), A(g + 8, k0 + q), A(g, k0 + q + 4), A(g + 8, k0 + q + 4)};
      uint32_t ahi[4], alo[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        ahi[e] = to_tf32(a[e]);
        if constexpr (P == Prec::kTf32x3) alo[e] = to_tf32(a[e] - __uint_as_float(ahi[e]));
      }
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        if (t < nt_active) {
          const float b[2] = {B(k0 + q, 8 * t + g), B(k0 + q + 4, 8 * t + g)};
          const uint32_t bhi[2] = {to_tf32(b[0]), to_tf32(b[1])};
          if constexpr (P == Prec::kTf32x3) {
            const uint32_t blo[2] = {to_tf32(b[0] - __uint_as_float(bhi[0])), to_tf32(b[1] - __uint_as_float(bhi[1]))};
            mma_tf32(c[t], alo, bhi);  // small terms first
            mma_tf32(c[t], ahi, blo);
          }
          mma_tf32(c[t], ahi, bhi);
        }
      }
    }
  }
}

template <int NT>
__device__ __forceinline__ void zero(float (&c)[NT][4]) {
#pragma unroll
  for (int t = 0; t < NT; ++t) c[t][0] = c[t][1] = c[t][2] = c[t][3] = 0.f;
}

// Writes a warp's 16 x 32 accumulator tile (the layout above) to its [16][kLdNK] shared tile.
__device__ __forceinline__ void store_warp_tile(float* dst, const float (&c)[kBN / 8][4]) {
  const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
#pragma unroll
  for (int t = 0; t < kBN / 8; ++t) {
    *reinterpret_cast<float2*>(dst + g * kLdNK + 8 * t + 2 * q) = make_float2(c[t][0], c[t][1]);
    *reinterpret_cast<float2*>(dst + (g + 8) * kLdNK + 8 * t + 2 * q) = make_float2(c[t][2], c[t][3]);
  }
  __syncwarp();
}

// Butterfly over the 4 lanes of a quad (the lanes holding one accumulator row).
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// ---- tile loads ---------------------------------------------------------------------------------

// dst[c * ld + p] = src[c * len + pos0 + p] for rows c < rows and p < cols, zero where
// c >= rows_valid or pos0 + p >= len (padding rows and columns must read as 0). Consecutive threads
// take consecutive positions: each warp reads 128 contiguous bytes of a channel row.
template <int COLS>
__device__ __forceinline__ void load_window(float* dst, int ld, const float* __restrict__ src, int len, int pos0,
                                            int rows, int rows_valid) {
  for (int e = threadIdx.x; e < rows * COLS; e += blockDim.x) {
    const int c = e / COLS, p = e % COLS;
    float x = 0.f;
    if (c < rows_valid && pos0 + p < len) x = __ldg(src + static_cast<size_t>(c) * len + pos0 + p);
    dst[c * ld + p] = x;
  }
}
// The same with a run-time width (resident tiles, loaded once per block).
__device__ __forceinline__ void load_window_rt(float* dst, int ld, const float* __restrict__ src, int len, int pos0,
                                               int rows, int rows_valid, int cols) {
  for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
    const int c = e / cols, p = e % cols;
    float x = 0.f;
    if (c < rows_valid && pos0 + p < len) x = __ldg(src + static_cast<size_t>(c) * len + pos0 + p);
    dst[c * ld + p] = x;
  }
}

struct Shapes {
  int N, M, dk, dv;  // queries, keys, head dim, value dim
  int dk_pad, dv_pad;  // rounded up to multiples of 8 (the mma's k)
};

// ---- forward --------------------------------------------------------------------------------------

// grid (ceil(N / 64), ceil(dv / kDvChunk), B), 128 threads. Shared memory (floats):
//   Qs [dk_pad][72]     resident queries     A(i, c) of S = Q^T K
//   Ks [dk_pad][40]     key tile             B(c, j)
//   Vs [kDvChunk][36]   value tile           B(j, ch) of O += P V^T
//   Ps [4][16][36]      per-warp P           A(i, j)
// The store applies the SAGAN block's epilogue when ep.y is set (y = gamma o + residual, the
// residual read once, in the same pass); o is written only when non-null (training keeps it for
// backward, eval does not).
template <Prec SP, Prec BP>
__global__ void __launch_bounds__(kMaxWarps * 32)
    attn_fwd(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
             float* __restrict__ o, float* __restrict__ lse, Shapes sh, AttentionEpilogue ep) {
  EMBER_DYNAMIC_SHARED(float, smem);
  constexpr int R = kMaxWarps * kWarpRows, NTO = kDvChunk / 8;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, qd = lane & 3;
  const int b = blockIdx.z, i0 = blockIdx.x * R, c0 = blockIdx.y * kDvChunk;
  const int dvc = min(kDvChunk, sh.dv - c0);  // value channels of this block
  const int ldq = resident_ld(R);
  float* Qs = smem;
  float* Ks = Qs + sh.dk_pad * ldq;
  float* Vs = Ks + sh.dk_pad * kLdKN;
  float* Ps = Vs + kDvChunk * kLdNK + warp * kWarpRows * kLdNK;

  const float* qb = q + static_cast<size_t>(b) * sh.dk * sh.N;
  const float* kb = k + static_cast<size_t>(b) * sh.dk * sh.M;
  const float* vb = v + (static_cast<size_t>(b) * sh.dv + c0) * sh.M;
  load_window_rt(Qs, ldq, qb, sh.N, i0, sh.dk_pad, sh.dk, R);

  float acc[NTO][4];
  zero(acc);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // running max (log2 units) and partial sums
  const int nt_o = (dvc + 7) / 8;
  for (int j0 = 0; j0 < sh.M; j0 += kBN) {
    __syncthreads();  // the previous tile is consumed (and Qs is loaded, on the first pass)
    load_window<kBN>(Ks, kLdKN, kb, sh.M, j0, sh.dk_pad, sh.dk);
    load_window<kBN>(Vs, kLdNK, vb, sh.M, j0, kDvChunk, dvc);
    __syncthreads();
    float s[kBN / 8][4];
    zero(s);
    warp_mma<SP, kBN / 8>(s, Tile{Qs + warp * kWarpRows, 1, ldq}, Tile{Ks, kLdKN, 1}, sh.dk_pad, kBN / 8);
    // Online softmax in base 2: x = s log2(e); the lane holds rows g (e < 2) and g + 8 (e >= 2).
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int t = 0; t < kBN / 8; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool valid = j0 + 8 * t + 2 * qd + (e & 1) < sh.M;
        s[t][e] = valid ? s[t][e] * kLog2e : -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[t][e]);
      }
    float scale[2], rowsum[2] = {0.f, 0.f};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = quad_max(mx[r]);             // finite: every tile holds at least one valid key
      scale[r] = exp2f(m[r] - mx[r]);      // 0 on the first tile (m = -inf)
      m[r] = mx[r];
    }
#pragma unroll
    for (int t = 0; t < kBN / 8; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[t][e] = exp2f(s[t][e] - m[e >> 1]);  // masked keys: exp2(-inf) = 0
        rowsum[e >> 1] += s[t][e];
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) l[r] = l[r] * scale[r] + rowsum[r];  // per-lane partial; reduced at the end
#pragma unroll
    for (int t = 0; t < NTO; ++t) {
      acc[t][0] *= scale[0];
      acc[t][1] *= scale[0];
      acc[t][2] *= scale[1];
      acc[t][3] *= scale[1];
    }
    store_warp_tile(Ps, s);
    warp_mma<BP, NTO>(acc, Tile{Ps, kLdNK, 1}, Tile{Vs, 1, kLdNK}, kBN, nt_o);
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) l[r] = quad_sum(l[r]);
  const int ia = i0 + warp * kWarpRows + g, ib = ia + 8;  // the lane's two query rows
  const size_t base = (static_cast<size_t>(b) * sh.dv + c0) * sh.N;  // o, y and the residual: [B, dv, N]
  const float gamma = ep.y ? __ldg(ep.gamma) : 0.f;
#pragma unroll
  for (int t = 0; t < NTO; ++t) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int ch = 8 * t + 2 * qd + (e & 1), i = e < 2 ? ia : ib;
      if (ch >= dvc || i >= sh.N) continue;
      const size_t at = base + static_cast<size_t>(ch) * sh.N + i;
      const float val = acc[t][e] / l[e >> 1];
      if (o) o[at] = val;
      // The expression of the composed gamma_residual (elementwise.cu), so that both round alike.
      if (ep.y) ep.y[at] = gamma * val + __ldg(ep.residual + at);
    }
  }
  if (blockIdx.y == 0 && qd == 0) {
    if (ia < sh.N) lse[static_cast<size_t>(b) * sh.N + ia] = m[0] * kLn2 + logf(l[0]);
    if (ib < sh.N) lse[static_cast<size_t>(b) * sh.N + ib] = m[1] * kLn2 + logf(l[1]);
  }
}

// ---- backward ---------------------------------------------------------------------------------------

// D[b, i] = sum_c dO[b, c, i] o[b, c, i]; one thread per query, coalesced along i.
__global__ void attn_rowdot(const float* __restrict__ o, const float* __restrict__ d_o, float* __restrict__ D,
                            int B, int N, int dv) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= static_cast<int64_t>(B) * N) return;
  const int64_t b = t / N, i = t % N;
  const size_t base = static_cast<size_t>(b) * dv * N + i;
  float acc = 0.f;
  for (int c = 0; c < dv; ++c) acc = fmaf(__ldg(d_o + base + static_cast<size_t>(c) * N), __ldg(o + base + static_cast<size_t>(c) * N), acc);
  D[t] = acc;
}

// Loads lse (as base-2 exponents) and optionally D for queries i0..i0+kBN; +inf / 0 past N so that
// p = exp2(s - inf) = 0 for the padding queries.
__device__ __forceinline__ void load_row_stats(float* Ls, float* Ds, const float* lse_b, const float* D_b, int N,
                                               int i0) {
  for (int p = threadIdx.x; p < kBN; p += blockDim.x) {
    const bool valid = i0 + p < N;
    Ls[p] = valid ? __ldg(lse_b + i0 + p) * kLog2e : INFINITY;
    if (Ds) Ds[p] = valid ? __ldg(D_b + i0 + p) : 0.f;
  }
}

// S^T for the warp's 16 keys against kBN queries, turned into P^T = exp2(S^T log2e - lse2_i).
template <Prec SP>
__device__ __forceinline__ void probs_transposed(float (&s)[kBN / 8][4], Tile Kt, Tile Qt, int dk_pad, const float* Ls) {
  const int qd = threadIdx.x & 3;
  zero(s);
  warp_mma<SP, kBN / 8>(s, Kt, Qt, dk_pad, kBN / 8);
#pragma unroll
  for (int t = 0; t < kBN / 8; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) s[t][e] = exp2f(fmaf(s[t][e], kLog2e, -Ls[8 * t + 2 * qd + (e & 1)]));
}

// dv_j = sum_i p_ij dO_i. grid (ceil(M / 64), ceil(dv / kDvChunk), B), 128 threads. Shared (floats):
//   Ks [dk_pad][72] resident keys A(j, c) | Qs [dk_pad][40] B(c, i) | Gs [kDvChunk][36] dO tile B(i, ch)
//   Ls [32] | Ps [4][16][36] per-warp P^T A(j, i)
template <Prec SP, Prec BP>
__global__ void __launch_bounds__(kMaxWarps * 32)
    attn_bwd_dv(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ lse,
                const float* __restrict__ d_o, float* __restrict__ dv, Shapes sh) {
  EMBER_DYNAMIC_SHARED(float, smem);
  constexpr int R = kMaxWarps * kWarpRows, NTO = kDvChunk / 8;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, qd = lane & 3;
  const int b = blockIdx.z, j0 = blockIdx.x * R, c0 = blockIdx.y * kDvChunk;
  const int dvc = min(kDvChunk, sh.dv - c0);
  const int ldk = resident_ld(R);
  float* Ks = smem;
  float* Qs = Ks + sh.dk_pad * ldk;
  float* Gs = Qs + sh.dk_pad * kLdKN;
  float* Ls = Gs + kDvChunk * kLdNK;
  float* Ps = Ls + kBN + warp * kWarpRows * kLdNK;

  const float* qb = q + static_cast<size_t>(b) * sh.dk * sh.N;
  const float* gb = d_o + (static_cast<size_t>(b) * sh.dv + c0) * sh.N;
  load_window_rt(Ks, ldk, k + static_cast<size_t>(b) * sh.dk * sh.M, sh.M, j0, sh.dk_pad, sh.dk, R);

  float acc[NTO][4];
  zero(acc);
  const int nt_o = (dvc + 7) / 8;
  for (int i0 = 0; i0 < sh.N; i0 += kBN) {
    __syncthreads();
    load_window<kBN>(Qs, kLdKN, qb, sh.N, i0, sh.dk_pad, sh.dk);
    load_window<kBN>(Gs, kLdNK, gb, sh.N, i0, kDvChunk, dvc);
    load_row_stats(Ls, nullptr, lse + static_cast<size_t>(b) * sh.N, nullptr, sh.N, i0);
    __syncthreads();
    float p[kBN / 8][4];
    probs_transposed<SP>(p, Tile{Ks + warp * kWarpRows, 1, ldk}, Tile{Qs, kLdKN, 1}, sh.dk_pad, Ls);
    store_warp_tile(Ps, p);
    warp_mma<BP, NTO>(acc, Tile{Ps, kLdNK, 1}, Tile{Gs, 1, kLdNK}, kBN, nt_o);
  }

  const int ja = j0 + warp * kWarpRows + g, jb = ja + 8;
  float* db = dv + (static_cast<size_t>(b) * sh.dv + c0) * sh.M;
#pragma unroll
  for (int t = 0; t < NTO; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int ch = 8 * t + 2 * qd + (e & 1), j = e < 2 ? ja : jb;
      if (ch < dvc && j < sh.M) db[static_cast<size_t>(ch) * sh.M + j] = acc[t][e];
    }
}

// dk_j = sum_i dS_ij q_i with dS_ij = p_ij (dO_i . v_j - D_i). grid (ceil(M / R), 1, B), R = 16 warps
// keys; the host picks warps (4, 2 or 1) so that v stays resident. Shared (floats):
//   Ks [dk_pad][R+8] A(j, c) | Vs [dv_pad][R+8] A(j, c) of dP^T | Qs [dk_pad][40] B(c, i) and B(i, c)
//   Gs [kDChunk][40] dO chunk B(c, i) | Ls [32] | Ds [32] | Ss [warps][16][36] per-warp dS^T A(j, i)
template <Prec SP, Prec BP>
__global__ void __launch_bounds__(kMaxWarps * 32)
    attn_bwd_dk(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                const float* __restrict__ lse, const float* __restrict__ D, const float* __restrict__ d_o,
                float* __restrict__ dk, Shapes sh) {
  EMBER_DYNAMIC_SHARED(float, smem);
  constexpr int NTK = kMaxDk / 8;
  const int nwarps = blockDim.x >> 5, R = nwarps * kWarpRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, qd = lane & 3;
  const int b = blockIdx.z, j0 = blockIdx.x * R;
  const int ldr = resident_ld(R);
  float* Ks = smem;
  float* Vs = Ks + sh.dk_pad * ldr;
  float* Qs = Vs + sh.dv_pad * ldr;
  float* Gs = Qs + sh.dk_pad * kLdKN;
  float* Ls = Gs + kDChunk * kLdKN;
  float* Ds = Ls + kBN;
  float* Ss = Ds + kBN + warp * kWarpRows * kLdNK;

  const float* qb = q + static_cast<size_t>(b) * sh.dk * sh.N;
  const float* gb = d_o + static_cast<size_t>(b) * sh.dv * sh.N;
  load_window_rt(Ks, ldr, k + static_cast<size_t>(b) * sh.dk * sh.M, sh.M, j0, sh.dk_pad, sh.dk, R);
  load_window_rt(Vs, ldr, v + static_cast<size_t>(b) * sh.dv * sh.M, sh.M, j0, sh.dv_pad, sh.dv, R);

  float acc[NTK][4];
  zero(acc);
  const int nt_k = sh.dk_pad / 8;
  for (int i0 = 0; i0 < sh.N; i0 += kBN) {
    __syncthreads();
    load_window<kBN>(Qs, kLdKN, qb, sh.N, i0, sh.dk_pad, sh.dk);
    load_row_stats(Ls, Ds, lse + static_cast<size_t>(b) * sh.N, D + static_cast<size_t>(b) * sh.N, sh.N, i0);
    __syncthreads();
    float p[kBN / 8][4];
    probs_transposed<SP>(p, Tile{Ks + warp * kWarpRows, 1, ldr}, Tile{Qs, kLdKN, 1}, sh.dk_pad, Ls);
    // dP^T = V^T dO over the value channels, streaming dO through Gs in chunks of kDChunk.
    float dp[kBN / 8][4];
    zero(dp);
    for (int c0 = 0; c0 < sh.dv_pad; c0 += kDChunk) {
      const int rows = min(kDChunk, sh.dv_pad - c0);
      __syncthreads();  // the previous chunk is consumed
      load_window<kBN>(Gs, kLdKN, gb + static_cast<size_t>(c0) * sh.N, sh.N, i0, rows, sh.dv - c0);
      __syncthreads();
      warp_mma<BP, kBN / 8>(dp, Tile{Vs + c0 * ldr + warp * kWarpRows, 1, ldr}, Tile{Gs, kLdKN, 1}, rows, kBN / 8);
    }
#pragma unroll
    for (int t = 0; t < kBN / 8; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) p[t][e] *= dp[t][e] - Ds[8 * t + 2 * qd + (e & 1)];  // dS^T
    store_warp_tile(Ss, p);
    warp_mma<BP, NTK>(acc, Tile{Ss, kLdNK, 1}, Tile{Qs, 1, kLdKN}, kBN, nt_k);
  }

  const int ja = j0 + warp * kWarpRows + g, jb = ja + 8;
  float* db = dk + static_cast<size_t>(b) * sh.dk * sh.M;
#pragma unroll
  for (int t = 0; t < NTK; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int c = 8 * t + 2 * qd + (e & 1), j = e < 2 ? ja : jb;
      if (c < sh.dk && j < sh.M) db[static_cast<size_t>(c) * sh.M + j] = acc[t][e];
    }
}

// dq_i = sum_j dS_ij k_j. grid (ceil(N / R), 1, B), R = 16 warps queries; dO stays resident. Shared:
//   Qs [dk_pad][R+8] A(i, c) | Gs [dv_pad][R+8] A(i, c) of dP | Ks [dk_pad][40] B(c, j) and B(j, c)
//   Vs [kDChunk][40] value chunk B(c, j) | Ss [warps][16][36] per-warp dS A(i, j)
template <Prec SP, Prec BP>
__global__ void __launch_bounds__(kMaxWarps * 32)
    attn_bwd_dq(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                const float* __restrict__ lse, const float* __restrict__ D, const float* __restrict__ d_o,
                float* __restrict__ dq, Shapes sh) {
  EMBER_DYNAMIC_SHARED(float, smem);
  constexpr int NTK = kMaxDk / 8;
  const int nwarps = blockDim.x >> 5, R = nwarps * kWarpRows;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, qd = lane & 3;
  const int b = blockIdx.z, i0 = blockIdx.x * R;
  const int ldr = resident_ld(R);
  float* Qs = smem;
  float* Gs = Qs + sh.dk_pad * ldr;
  float* Ks = Gs + sh.dv_pad * ldr;
  float* Vs = Ks + sh.dk_pad * kLdKN;
  float* Ss = Vs + kDChunk * kLdKN + warp * kWarpRows * kLdNK;

  const float* kb = k + static_cast<size_t>(b) * sh.dk * sh.M;
  const float* vb = v + static_cast<size_t>(b) * sh.dv * sh.M;
  load_window_rt(Qs, ldr, q + static_cast<size_t>(b) * sh.dk * sh.N, sh.N, i0, sh.dk_pad, sh.dk, R);
  load_window_rt(Gs, ldr, d_o + static_cast<size_t>(b) * sh.dv * sh.N, sh.N, i0, sh.dv_pad, sh.dv, R);
  // The lane's two query rows and their statistics (padding rows: p = 0 through lse2 = +inf).
  const int ia = i0 + warp * kWarpRows + g, ib = ia + 8;
  float lse2[2], Drow[2];
  lse2[0] = ia < sh.N ? __ldg(lse + static_cast<size_t>(b) * sh.N + ia) * kLog2e : INFINITY;
  lse2[1] = ib < sh.N ? __ldg(lse + static_cast<size_t>(b) * sh.N + ib) * kLog2e : INFINITY;
  Drow[0] = ia < sh.N ? __ldg(D + static_cast<size_t>(b) * sh.N + ia) : 0.f;
  Drow[1] = ib < sh.N ? __ldg(D + static_cast<size_t>(b) * sh.N + ib) : 0.f;

  float acc[NTK][4];
  zero(acc);
  const int nt_k = sh.dk_pad / 8;
  for (int j0 = 0; j0 < sh.M; j0 += kBN) {
    __syncthreads();
    load_window<kBN>(Ks, kLdKN, kb, sh.M, j0, sh.dk_pad, sh.dk);
    __syncthreads();
    float p[kBN / 8][4];
    zero(p);
    warp_mma<SP, kBN / 8>(p, Tile{Qs + warp * kWarpRows, 1, ldr}, Tile{Ks, kLdKN, 1}, sh.dk_pad, kBN / 8);
#pragma unroll
    for (int t = 0; t < kBN / 8; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool valid = j0 + 8 * t + 2 * qd + (e & 1) < sh.M;  // padding keys read as k = 0: mask them
        p[t][e] = valid ? exp2f(fmaf(p[t][e], kLog2e, -lse2[e >> 1])) : 0.f;
      }
    float dp[kBN / 8][4];
    zero(dp);
    for (int c0 = 0; c0 < sh.dv_pad; c0 += kDChunk) {
      const int rows = min(kDChunk, sh.dv_pad - c0);
      __syncthreads();
      load_window<kBN>(Vs, kLdKN, vb + static_cast<size_t>(c0) * sh.M, sh.M, j0, rows, sh.dv - c0);
      __syncthreads();
      warp_mma<BP, kBN / 8>(dp, Tile{Gs + c0 * ldr + warp * kWarpRows, 1, ldr}, Tile{Vs, kLdKN, 1}, rows, kBN / 8);
    }
#pragma unroll
    for (int t = 0; t < kBN / 8; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) p[t][e] *= dp[t][e] - Drow[e >> 1];  // dS
    store_warp_tile(Ss, p);
    warp_mma<BP, NTK>(acc, Tile{Ss, kLdNK, 1}, Tile{Ks, 1, kLdKN}, kBN, nt_k);
  }

  float* db = dq + static_cast<size_t>(b) * sh.dk * sh.N;
#pragma unroll
  for (int t = 0; t < NTK; ++t)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int c = 8 * t + 2 * qd + (e & 1), i = e < 2 ? ia : ib;
      if (c < sh.dk && i < sh.N) db[static_cast<size_t>(c) * sh.N + i] = acc[t][e];
    }
}

// ---- attention weights of chosen queries ----------------------------------------------------------

// probs[b, n, :] = softmax_j(q_i . k_j) for i = query_idx[n]; grid (nq, B), 256 threads, fp32 FMA.
// The row is written three times (scores, then nothing, then probabilities): each thread rereads only
// what it wrote itself, so no synchronisation is needed between the passes beyond the reductions.
__global__ void attn_probs(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ idx,
                           float* __restrict__ probs, int N, int M, int dk, int nq) {
  EMBER_DYNAMIC_SHARED(float, smem);  // q column [dk] | reduction scratch [32]
  float* qc = smem;
  float* scratch = smem + dk;
  const int n = blockIdx.x, b = blockIdx.y;
  const int i = static_cast<int>(__ldg(idx + n));
  const float* kb = k + static_cast<size_t>(b) * dk * M;
  for (int c = threadIdx.x; c < dk; c += blockDim.x) qc[c] = __ldg(q + (static_cast<size_t>(b) * dk + c) * N + i);
  __syncthreads();
  float* row = probs + (static_cast<size_t>(b) * nq + n) * M;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < M; j += blockDim.x) {
    float s = 0.f;
    for (int c = 0; c < dk; ++c) s = fmaf(qc[c], __ldg(kb + static_cast<size_t>(c) * M + j), s);
    row[j] = s;
    mx = fmaxf(mx, s);
  }
  mx = block_max(mx, scratch);
  float sum = 0.f;
  for (int j = threadIdx.x; j < M; j += blockDim.x) sum += expf(row[j] - mx);
  const float inv = 1.f / block_sum(sum, scratch);
  for (int j = threadIdx.x; j < M; j += blockDim.x) row[j] = expf(row[j] - mx) * inv;
}

// ---- launch geometry (host) ------------------------------------------------------------------

size_t fwd_smem(const Shapes& s) {
  return sizeof(float) * (s.dk_pad * resident_ld(kMaxWarps * kWarpRows) + s.dk_pad * kLdKN + kDvChunk * kLdNK +
                          kMaxWarps * kWarpRows * kLdNK);
}
size_t dv_smem(const Shapes& s) { return fwd_smem(s) + sizeof(float) * kBN; }
// dk and dq kernels: two resident tiles of R rows (dk and dv channels), two streamed tiles, row stats.
size_t dkdq_smem(const Shapes& s, int nwarps) {
  const int R = nwarps * kWarpRows;
  return sizeof(float) * ((s.dk_pad + s.dv_pad) * resident_ld(R) + s.dk_pad * kLdKN + kDChunk * kLdKN + 2 * kBN +
                          nwarps * kWarpRows * kLdNK);
}
// The most warps (4, 2, 1) whose resident tiles fit the device's shared memory.
int dkdq_warps(const Shapes& s, int max_smem) {
  for (int w = kMaxWarps; w >= 1; w /= 2)
    if (dkdq_smem(s, w) <= static_cast<size_t>(max_smem)) return w;
  EMBER_FAIL("attention backward (cuda): value dim " << s.dv << " with head dim " << s.dk << " needs "
                                                     << dkdq_smem(s, 1) << " bytes of shared memory per block, the "
                                                     << "device allows " << max_smem);
}

// Blocks of `per` threads (or rows) covering n items, checked against the grid dimension's limit
// (2^31 - 1 for grid.x, 65535 for grid.y and grid.z). n is 64-bit: B * N overflows int.
unsigned blocks(int64_t n, int per, int64_t limit = 2147483647) {
  const int64_t b = (n + per - 1) / per;
  EMBER_CHECK(b <= limit, "attention (cuda): " << n << " items in blocks of " << per << " need " << b
                                               << " blocks, more than the grid dimension allows (" << limit << ")");
  return static_cast<unsigned>(b);
}

}  // namespace
}  // namespace ember::cuda
