// Spectral normalisation by power iteration on CUDA (kernels/spectral_norm.inc), with
// torch.nn.utils.spectral_norm's semantics.
//
// The algorithm. The weight is the matrix Wm [rows, cols] of kernels/spectral_norm_layout.h.
// One training step:
//     v' = Wm^T u,  v = v' / max(||v'||, eps),  t = Wm v,  u = t / max(||t||, eps),  sigma = u . t
// and the layer uses w / sigma. Backward (u, v constants): dw = (g - <g, w>/sigma u v^T) / sigma.
//
// The floor. A step does 4 flops per weight (two multiply-adds) and must read W at least once:
// 4 bytes per weight against 4 flops, far below the H100's ratio of ~20 flops per byte, so it
// is bound by memory and the floor is one read of W. The two matrix-vector products depend on
// each other through ||v'||, so without keeping W on chip the practical floor is two reads of
// W, the second one mostly from L2 for weights that fit there (50 MB on H100). The vectors
// (rows + cols floats) are noise beside W. A 512 x 4608 weight (9.4 MB) is one read in ~3 us at
// ~3 TB/s: at that size a single launch costs as much as the work, so launches count as much as
// bytes. PyTorch issues about a dozen launches (two cuBLAS gemvs plus small kernels for each
// norm, clamp and divide, the clones, a third gemv, a dot, the divide of W); this file does it in
// two, with every reduction finished on the device (no host synchronisation).
//
// The kernels:
//   sn_colpass  (launch 1): v' = Wm^T u. The grid tiles Wm into [rows_per_tile x 4*TX] tiles.
//       A block of TX x TY threads: each thread owns 4 neighbouring columns (one 16-byte load
//       per row when inner % 4 == 0) and its row group of the tile's rows; the TY row groups
//       add up in shared memory and the block writes one partial row of v'. The last block to
//       finish a column tile (an atomic ticket) adds the partials of all row tiles in a fixed
//       order -- deterministic, no float atomics -- and writes v' and its sum of squares.
//   sn_rowpass  (launch 2): t = Wm v. Every block first forms ||v'|| from the column tiles'
//       sums of squares and holds v = v'/||v'|| for its 4 columns in registers; per row, the
//       dot products of the lanes are summed by shuffles. The last block of each row tile sums
//       the column tiles' partials into t; the last of those computes ||t||, writes u and sigma.
//   The same rowpass without the normalisation gives sigma in eval mode (spectral_norm_sigma).
//   sn_scale: w / sigma, sigma read from device memory (16-byte loads).
//   sn_grad_dot + sn_grad_apply: <g, w> (block partials, last block sums in order), then
//       dw = (g - <g,w>/sigma u v^T) / sigma elementwise: reads g and w, then g again (L2) and
//       writes dw.
// The atomic tickets live in a small __device__ array that every user resets before it exits,
// so launches on one stream never see a stale count; concurrent launches on several streams would
// need one array each. Ember has one stream (the invariant in core/cuda/cuda_context.cuh): every
// launcher below asserts that it was given that stream.
//
// How to run them: tests/cuda/test_spectral_norm.cpp (CPU vs CUDA for dims 0 and 1, both load
// paths, the unfused baseline), benchmarks/bench_spectral_norm (timings against the PyTorch
// launch sequence issued through cuBLAS in the same program). docs/kernels.md (Spectral normalisation)
// walks through the design.
#include <algorithm>
#include <climits>
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/spectral_norm.cuh"
#ifndef EMBER_KERNELS_ONLY
#include "kernels/kernels.h"
#endif
#include "kernels/spectral_norm_layout.h"

namespace ember::cuda {

namespace {

constexpr int kBlockThreads = 512;   // TX * TY threads per block of the two passes
constexpr int kMaxTileRows = 256;    // rows per tile (shared-memory arrays are sized by it)
constexpr int kMaxTiles = 16384;     // column tiles or row tiles of one launch
constexpr int kFinalSlot = kMaxTiles;
constexpr int kDotThreads = 256;
constexpr int kMaxDotBlocks = 1024;

// Atomic tickets: slot i counts the blocks done with tile i; kFinalSlot counts finished tiles
// (or blocks of sn_grad_dot). Zero at module load; each last block resets its slot. The grouped
// launches give every weight of the table its own run of slots in the same array.
__device__ unsigned int g_tickets[kMaxTiles + 1];

// Returns, to every thread of the block, whether this block is the last of `expected` blocks
// to arrive at `slot`. The fence publishes this block's global writes before its ticket; the
// winner resets the slot for the next launch.
__device__ __forceinline__ bool last_to_arrive(unsigned* tickets, int slot, unsigned expected, bool* flag) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0 && threadIdx.y == 0) {
    const bool last = atomicAdd(&tickets[slot], 1u) == expected - 1;
    if (last) tickets[slot] = 0;
    *flag = last;
  }
  __syncthreads();
  if (*flag) __threadfence();  // order the reads of other blocks' results after the ticket
  return *flag;
}

// Offset of Wm[0][c] in w (kernels/spectral_norm_layout.h).
__device__ __forceinline__ int64_t col_base(int c, int rows, int inner) {
  return static_cast<int64_t>(c / inner) * rows * inner + c % inner;
}

// Loads Wm[r][c0..c0+3] (zeros past the last column). VEC: the four are contiguous and aligned.
template <bool VEC>
__device__ __forceinline__ void load4(const float* __restrict__ w, const int64_t* base, int64_t roff, int c0,
                                      int cols, float* out) {
  if constexpr (VEC) {
    const float4 t = *reinterpret_cast<const float4*>(w + base[0] + roff);
    out[0] = t.x, out[1] = t.y, out[2] = t.z, out[3] = t.w;
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) out[j] = c0 + j < cols ? w[base[j] + roff] : 0.0f;
  }
}

struct Plan {
  int tx = 32, ty = 16;  // threads per block along columns (4 columns each) and row groups
  int col_tiles = 1, row_tiles = 1, rows_per_tile = 1;
  // Workspace regions, in floats from the start (each a multiple of 4: 16-byte aligned).
  int64_t p1 = 0, vraw = 0, ssq = 0, p2 = 0, traw = 0, rt = 0, dotp = 0, scal = 0, total = 0;
};

int64_t round4(int64_t n) { return (n + 3) & ~int64_t{3}; }

Plan make_plan(SnDims d) {
  EMBER_CHECK(d.rows >= 1 && d.cols >= 1 && d.inner >= 1 && d.cols % d.inner == 0,
              "spectral_norm (CUDA): bad matrix view rows " << d.rows << ", cols " << d.cols << ", inner " << d.inner);
  EMBER_CHECK(d.rows * d.cols < INT_MAX,
              "spectral_norm (CUDA): weights of " << d.rows * d.cols << " elements exceed " << INT_MAX);
  Plan p;
  while (p.tx < 128 && p.tx * 4 < d.cols) p.tx *= 2;
  p.ty = kBlockThreads / p.tx;
  p.col_tiles = static_cast<int>(ceil_div(d.cols, 4 * p.tx));
  // About two blocks per multiprocessor, every row group with at least one row.
  const int64_t want_row_tiles = ceil_div(2 * device_info().sm_count, p.col_tiles);
  p.rows_per_tile = static_cast<int>(std::clamp<int64_t>(ceil_div(d.rows, want_row_tiles), p.ty, kMaxTileRows));
  p.row_tiles = static_cast<int>(ceil_div(d.rows, p.rows_per_tile));
  EMBER_CHECK(p.col_tiles <= kMaxTiles && p.row_tiles <= kMaxTiles,
              "spectral_norm (CUDA): matrix " << d.rows << " x " << d.cols << " needs more than " << kMaxTiles
                                              << " tiles along one side");
  int64_t at = 0;
  auto region = [&at](int64_t n) {
    const int64_t start = at;
    at += round4(n);
    return start;
  };
  p.p1 = region(static_cast<int64_t>(p.row_tiles) * d.cols);  // (row_tiles, cols)
  p.vraw = region(d.cols);                                    // (cols)
  p.ssq = region(p.col_tiles);                                // (col_tiles)
  p.p2 = region(static_cast<int64_t>(p.col_tiles) * d.rows);  // (col_tiles, rows)
  p.traw = region(d.rows);                                    // (rows)
  p.rt = region(p.row_tiles);                                 // (row_tiles)
  p.dotp = region(kMaxDotBlocks);                             // (blocks of sn_grad_dot)
  p.scal = region(4);
  p.total = at;
  return p;
}

// ---- launch 1: v' = Wm^T u ----------------------------------------------------------------------
// Shared memory of one colpass block.
struct ColpassShared {
  float* us;       // [kMaxTileRows]: u for this tile's rows
  float* red;      // [kBlockThreads * 4]: (ty, 4 * tx), the row groups' column sums
  float* scratch;  // [32]
  bool* last;
};

// The block (bx = column tile, by = row tile) of a TX x TY thread layout (tid = ty * TX + tx);
// its tickets are tickets[0 .. col_tiles).
template <bool VEC>
__device__ __forceinline__ void colpass_block(const float* __restrict__ w, const float* __restrict__ u, int rows,
                                              int cols, int inner, int rows_per_tile, int row_tiles,
                                              float* __restrict__ p1, float* __restrict__ vraw,
                                              float* __restrict__ ssq, int bx, int by, int tx, int ty, int TX,
                                              int TY, unsigned* tickets, ColpassShared sh) {
  float* us = sh.us;
  float* red = sh.red;
  float* scratch = sh.scratch;
  const int tid = ty * TX + tx;
  const int r0 = by * rows_per_tile, r1 = min(rows, r0 + rows_per_tile);
  for (int r = r0 + tid; r < r1; r += TX * TY) us[r - r0] = u[r];
  __syncthreads();

  const int c0 = (bx * TX + tx) * 4;
  int64_t base[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) base[j] = c0 + j < cols ? col_base(c0 + j, rows, inner) : 0;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (c0 < cols) {
#pragma unroll 8
    for (int r = r0 + ty; r < r1; r += TY) {
      float t[4];
      load4<VEC>(w, base, static_cast<int64_t>(r) * inner, c0, cols, t);
      const float ur = us[r - r0];
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[j] += t[j] * ur;
    }
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) red[ty * 4 * TX + 4 * tx + j] = acc[j];
  __syncthreads();
  if (ty == 0 && c0 < cols) {
    for (int g = 1; g < TY; ++g)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[j] += red[g * 4 * TX + 4 * tx + j];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (c0 + j < cols) p1[static_cast<int64_t>(by) * cols + c0 + j] = acc[j];
  }

  if (!last_to_arrive(tickets, bx, row_tiles, sh.last)) return;
  // The last block of this column tile: v' = sum over row tiles of the partials, in order.
  // Row group ty takes row tiles ty, ty + TY, ...; the groups are then added in order.
#pragma unroll
  for (int j = 0; j < 4; ++j) acc[j] = 0.0f;
  if (c0 < cols) {
#pragma unroll 4
    for (int q = ty; q < row_tiles; q += TY)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (c0 + j < cols) acc[j] += __ldcg(p1 + static_cast<int64_t>(q) * cols + c0 + j);
  }
  __syncthreads();  // everyone is done reading red[] above
#pragma unroll
  for (int j = 0; j < 4; ++j) red[ty * 4 * TX + 4 * tx + j] = acc[j];
  __syncthreads();
  float ss = 0.0f;
  if (ty == 0 && c0 < cols) {
    for (int g = 1; g < TY; ++g)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[j] += red[g * 4 * TX + 4 * tx + j];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (c0 + j < cols) {
        vraw[c0 + j] = acc[j];
        ss += acc[j] * acc[j];
      }
  }
  ss = block_sum(ss, scratch);
  if (tid == 0) ssq[bx] = ss;
}

template <bool VEC>
__global__ void __launch_bounds__(kBlockThreads, 2)
    sn_colpass(const float* __restrict__ w, const float* __restrict__ u, int rows, int cols, int inner,
               int rows_per_tile, int row_tiles, float* __restrict__ p1, float* __restrict__ vraw,
               float* __restrict__ ssq) {
  EMBER_SHARED(float, us, [kMaxTileRows]);
  EMBER_SHARED(float, red, [kBlockThreads * 4]);
  EMBER_SHARED(float, scratch, [32]);
  EMBER_SHARED(bool, last, );
  colpass_block<VEC>(w, u, rows, cols, inner, rows_per_tile, row_tiles, p1, vraw, ssq, blockIdx.x, blockIdx.y,
                     threadIdx.x, threadIdx.y, blockDim.x, blockDim.y, g_tickets, {us, red, scratch, &last});
}

// ---- launch 2: t = Wm v, then u and sigma (TRAIN), or sigma = u . t (eval) -----------------------
// Shared memory of one rowpass block.
struct RowpassShared {
  float (*rowsum)[kMaxTileRows];  // [4][kMaxTileRows]: (column warp, row of the tile)
  float* scratch;                 // [32]
  bool* last;
};

// The block (bx = column tile, by = row tile) of a TX x TY thread layout; its tickets are
// tickets[0 .. row_tiles) and tickets[final_slot].
template <bool VEC, bool TRAIN>
__device__ __forceinline__ void rowpass_block(const float* __restrict__ w, int rows, int cols, int inner,
                                              int rows_per_tile, int col_tiles, int row_tiles,
                                              const float* __restrict__ vsrc, const float* __restrict__ ssq,
                                              float eps, float* __restrict__ v_out, float* __restrict__ p2,
                                              float* __restrict__ traw, float* __restrict__ rt, float* __restrict__ u,
                                              float* __restrict__ sigma, int bx, int by, int tx, int ty, int TX,
                                              int TY, unsigned* tickets, int final_slot, RowpassShared sh) {
  float (*rowsum)[kMaxTileRows] = sh.rowsum;
  float* scratch = sh.scratch;
  const int tid = ty * TX + tx, nthreads = TX * TY;
  const int lane = tx & 31, cwarp = tx >> 5;  // TX is a multiple of 32: a warp is one row group

  // This thread's 4 entries of v. TRAIN: v = v' / max(||v'||, eps), ||v'||^2 from the column
  // tiles' sums (every block adds them in the same order, so all agree bit for bit).
  const int c0 = (bx * TX + tx) * 4;
  float vv[4];
  if constexpr (TRAIN) {
    float s = 0.0f;
    for (int i = tid; i < col_tiles; i += nthreads) s += ssq[i];
    const float nv = nan_max(sqrtf(block_sum(s, scratch)), eps);
#pragma unroll
    for (int j = 0; j < 4; ++j) vv[j] = c0 + j < cols ? vsrc[c0 + j] / nv : 0.0f;
    if (by == 0 && ty == 0)
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (c0 + j < cols) v_out[c0 + j] = vv[j];
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) vv[j] = c0 + j < cols ? vsrc[c0 + j] : 0.0f;
  }
  int64_t base[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) base[j] = c0 + j < cols ? col_base(c0 + j, rows, inner) : 0;

  // Per row: this thread's 4-term dot, summed over the warp's 32 lanes by shuffles.
  const int r0 = by * rows_per_tile, r1 = min(rows, r0 + rows_per_tile);
#pragma unroll 4
  for (int r = r0 + ty; r < r1; r += TY) {
    float d = 0.0f;
    if (c0 < cols) {
      float t[4];
      load4<VEC>(w, base, static_cast<int64_t>(r) * inner, c0, cols, t);
#pragma unroll
      for (int j = 0; j < 4; ++j) d += t[j] * vv[j];
    }
    d = group_sum(d);
    if (lane == 0) rowsum[cwarp][r - r0] = d;
  }
  __syncthreads();
  const int cwarps = TX >> 5;
  for (int i = tid; i < r1 - r0; i += nthreads) {
    float s = 0.0f;
    for (int k = 0; k < cwarps; ++k) s += rowsum[k][i];
    p2[static_cast<int64_t>(bx) * rows + r0 + i] = s;
  }

  // The last block of this row tile: t for its rows (column tiles added in order), and the
  // tile's share of ||t||^2 (TRAIN) or of u . t (eval).
  if (!last_to_arrive(tickets, by, col_tiles, sh.last)) return;
  float part = 0.0f;
  for (int i = tid; i < r1 - r0; i += nthreads) {
    const int r = r0 + i;
    float t = 0.0f;
    for (int q = 0; q < col_tiles; ++q) t += __ldcg(p2 + static_cast<int64_t>(q) * rows + r);
    traw[r] = t;
    part += TRAIN ? t * t : u[r] * t;
  }
  part = block_sum(part, scratch);
  if (tid == 0) rt[by] = part;

  // The last row tile overall: sigma, and in training u = t / max(||t||, eps).
  if (!last_to_arrive(tickets, final_slot, row_tiles, sh.last)) return;
  float s = 0.0f;
  for (int i = tid; i < row_tiles; i += nthreads) s += __ldcg(rt + i);
  s = block_sum(s, scratch);
  if constexpr (TRAIN) {
    const float nt = nan_max(sqrtf(s), eps);
    float dot = 0.0f;
    for (int r = tid; r < rows; r += nthreads) {
      const float t = __ldcg(traw + r);
      const float un = t / nt;
      u[r] = un;
      dot += un * t;
    }
    dot = block_sum(dot, scratch);
    if (tid == 0) *sigma = dot;
  } else {
    if (tid == 0) *sigma = s;
  }
}

template <bool VEC, bool TRAIN>
__global__ void __launch_bounds__(kBlockThreads, 2)
    sn_rowpass(const float* __restrict__ w, int rows, int cols, int inner, int rows_per_tile, int col_tiles,
               int row_tiles, const float* __restrict__ vsrc, const float* __restrict__ ssq, float eps,
               float* __restrict__ v_out, float* __restrict__ p2, float* __restrict__ traw, float* __restrict__ rt,
               float* __restrict__ u, float* __restrict__ sigma) {
  EMBER_SHARED(float, rowsum, [4][kMaxTileRows]);
  EMBER_SHARED(float, scratch, [32]);
  EMBER_SHARED(bool, last, );
  rowpass_block<VEC, TRAIN>(w, rows, cols, inner, rows_per_tile, col_tiles, row_tiles, vsrc, ssq, eps, v_out, p2,
                            traw, rt, u, sigma, blockIdx.x, blockIdx.y, threadIdx.x, threadIdx.y, blockDim.x,
                            blockDim.y, g_tickets, kFinalSlot, {rowsum, scratch, &last});
}

// ---- grouped launches: every weight of a table in one grid ---------------------------------------
// Weight i owns blocks [first_block, first_block + col_tiles * row_tiles) of the 1-D grid, in
// the order of its own launch's (column tile, row tile) grid, and ticket slots [ticket_base,
// ticket_base + max(col_tiles, row_tiles)] (the last one its final slot). Threads are 1-D:
// tid = ty * tx_count + tx, the linear index of its own 2-D block, so warps and reductions match.
struct GroupEntry {
  const float* w;
  float *u, *v, *sigma, *ws;
  Plan plan;
  float eps;
  int rows, cols, inner, first_block, ticket_base, vec;
};
struct GroupTable {
  int count;
  GroupEntry e[kSnGroupMax];
};
// Kernel arguments are limited to 4 KB before CUDA 12.1 and Volta: keep the table inside.
static_assert(sizeof(GroupTable) <= 4096, "the grouped table must fit in 4 KB of kernel arguments");

// Where the running block sits: its entry (a linear search over at most kSnGroupMax), its tile
// (bx, by) and the thread's (tx, ty) in that weight's TX x TY layout.
struct GroupBlock {
  const GroupEntry* e;
  int bx, by, tx, ty, TX, TY;
};
__device__ __forceinline__ GroupBlock group_block(const GroupTable& t) {
  int i = 0;
  while (i + 1 < t.count && static_cast<int>(blockIdx.x) >= t.e[i + 1].first_block) ++i;
  const GroupEntry& e = t.e[i];
  const int local = blockIdx.x - e.first_block, TX = e.plan.tx;
  return {&e, local % e.plan.col_tiles, local / e.plan.col_tiles, static_cast<int>(threadIdx.x) % TX,
          static_cast<int>(threadIdx.x) / TX, TX, kBlockThreads / TX};
}

__global__ void __launch_bounds__(kBlockThreads, 2) sn_group_colpass(const GroupTable t) {
  EMBER_SHARED(float, us, [kMaxTileRows]);
  EMBER_SHARED(float, red, [kBlockThreads * 4]);
  EMBER_SHARED(float, scratch, [32]);
  EMBER_SHARED(bool, last, );
  const GroupBlock gb = group_block(t);
  const GroupEntry& e = *gb.e;
  const Plan& p = e.plan;
  const ColpassShared sh{us, red, scratch, &last};
  if (e.vec) {
    colpass_block<true>(e.w, e.u, e.rows, e.cols, e.inner, p.rows_per_tile, p.row_tiles, e.ws + p.p1, e.ws + p.vraw,
                        e.ws + p.ssq, gb.bx, gb.by, gb.tx, gb.ty, gb.TX, gb.TY,
                        g_tickets + e.ticket_base, sh);
  } else {
    colpass_block<false>(e.w, e.u, e.rows, e.cols, e.inner, p.rows_per_tile, p.row_tiles, e.ws + p.p1, e.ws + p.vraw,
                         e.ws + p.ssq, gb.bx, gb.by, gb.tx, gb.ty, gb.TX, gb.TY,
                        g_tickets + e.ticket_base, sh);
  }
}

// TRAIN: v from the colpass's v', then u and sigma; eval: sigma = u . (Wm v).
template <bool TRAIN>
__global__ void __launch_bounds__(kBlockThreads, 2) sn_group_rowpass(const GroupTable t) {
  EMBER_SHARED(float, rowsum, [4][kMaxTileRows]);
  EMBER_SHARED(float, scratch, [32]);
  EMBER_SHARED(bool, last, );
  const GroupBlock gb = group_block(t);
  const GroupEntry& e = *gb.e;
  const Plan& p = e.plan;
  const RowpassShared sh{rowsum, scratch, &last};
  const float* vsrc = TRAIN ? e.ws + p.vraw : e.v;
  float* v_out = TRAIN ? e.v : nullptr;
  const int final_slot = max(p.col_tiles, p.row_tiles);
  if (e.vec) {
    rowpass_block<true, TRAIN>(e.w, e.rows, e.cols, e.inner, p.rows_per_tile, p.col_tiles, p.row_tiles, vsrc,
                               e.ws + p.ssq, e.eps, v_out, e.ws + p.p2, e.ws + p.traw, e.ws + p.rt, e.u, e.sigma,
                               gb.bx, gb.by, gb.tx, gb.ty, gb.TX, gb.TY, g_tickets + e.ticket_base, final_slot, sh);
  } else {
    rowpass_block<false, TRAIN>(e.w, e.rows, e.cols, e.inner, p.rows_per_tile, p.col_tiles, p.row_tiles, vsrc,
                                e.ws + p.ssq, e.eps, v_out, e.ws + p.p2, e.ws + p.traw, e.ws + p.rt, e.u, e.sigma,
                                gb.bx, gb.by, gb.tx, gb.ty, gb.TX, gb.TY, g_tickets + e.ticket_base, final_slot, sh);
  }
}

// ---- w / sigma ------------------------------------------------------------------------------------
__global__ void sn_scale_vec(const float4* __restrict__ w, const float* __restrict__ sigma, float4* __restrict__ out,
                             int64_t n4) {
  const float s = *sigma;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n4;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float4 a = w[i];
    out[i] = make_float4(a.x / s, a.y / s, a.z / s, a.w / s);
  }
}
__global__ void sn_scale_scalar(const float* __restrict__ w, const float* __restrict__ sigma,
                                float* __restrict__ out, int64_t n) {
  const float s = *sigma;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = w[i] / s;
}

// ---- backward --------------------------------------------------------------------------------------
// coef = <g, w> / sigma = <g, w_sn>: per-block sums, the last block adds them in order.
template <bool VEC>
__global__ void __launch_bounds__(kDotThreads)
    sn_grad_dot(const float* __restrict__ g, const float* __restrict__ w, int64_t n, const float* __restrict__ sigma,
                float* __restrict__ partials, float* __restrict__ coef) {
  EMBER_SHARED(float, scratch, [32]);
  EMBER_SHARED(bool, last, );
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  float s = 0.0f;
  if constexpr (VEC) {
    const float4* g4 = reinterpret_cast<const float4*>(g);
    const float4* w4 = reinterpret_cast<const float4*>(w);
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n / 4; i += stride) {
      const float4 a = g4[i], b = w4[i];
      s += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
    }
  } else {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
      s += g[i] * w[i];
  }
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
  if (!last_to_arrive(g_tickets, kFinalSlot, gridDim.x, &last)) return;
  float t = 0.0f;
  for (int i = threadIdx.x; i < static_cast<int>(gridDim.x); i += blockDim.x) t += __ldcg(partials + i);
  t = block_sum(t, scratch);
  if (threadIdx.x == 0) *coef = t / *sigma;
}

// dw = (g - coef u[r] v[c]) / sigma for every entry, (r, c) recovered from the flat index.
// VEC: inner % 4 == 0, so the 4 entries of a float4 share r and have consecutive c.
template <bool VEC>
__global__ void sn_grad_apply(const float* __restrict__ g, const float* __restrict__ u, const float* __restrict__ v,
                              const float* __restrict__ sigma, const float* __restrict__ coef, int64_t n, int rows,
                              int inner, float* __restrict__ dw) {
  const float s = *sigma, k = *coef;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if constexpr (VEC) {
    for (int64_t i = first; i < n / 4; i += stride) {
      const int64_t e = 4 * i;
      const int64_t q = e / inner;
      const int r = static_cast<int>(q % rows);
      const int64_t c = (q / rows) * inner + e % inner;
      const float a = k * u[r];
      const float4 gg = reinterpret_cast<const float4*>(g)[i];
      reinterpret_cast<float4*>(dw)[i] = make_float4((gg.x - a * v[c]) / s, (gg.y - a * v[c + 1]) / s,
                                                     (gg.z - a * v[c + 2]) / s, (gg.w - a * v[c + 3]) / s);
    }
  } else {
    for (int64_t e = first; e < n; e += stride) {
      const int64_t q = e / inner;
      const int r = static_cast<int>(q % rows);
      const int64_t c = (q / rows) * inner + e % inner;
      dw[e] = (g[e] - k * u[r] * v[c]) / s;
    }
  }
}

unsigned elementwise_grid(int64_t work, int threads) {
  return static_cast<unsigned>(std::min<int64_t>(ceil_div(work, threads), 8LL * device_info().sm_count));
}

}  // namespace

// ---- launchers ---------------------------------------------------------------------------------

int64_t sn_workspace_floats(SnDims d) { return make_plan(d).total; }

namespace {
template <bool TRAIN>
void launch_rowpass(bool vec, const Plan& p, dim3 grid, dim3 block, const float* w, SnDims d, const float* vsrc,
                    float* ws, float eps, float* v_out, float* u, float* sigma, cudaStream_t st) {
  auto k = vec ? sn_rowpass<true, TRAIN> : sn_rowpass<false, TRAIN>;
  EMBER_LAUNCH(grid, block, 0, st, k)(w, static_cast<int>(d.rows), static_cast<int>(d.cols), static_cast<int>(d.inner),
                            p.rows_per_tile, p.col_tiles, p.row_tiles, vsrc, ws + p.ssq, eps, v_out, ws + p.p2,
                            ws + p.traw, ws + p.rt, u, sigma);
  EMBER_CUDA_LAUNCH_CHECK("sn_rowpass");
}
}  // namespace

void sn_power_iteration_launch(const float* w, SnDims d, float eps, float* u, float* v, float* sigma, float* ws,
                               cudaStream_t st) {
  cuda_rt::check_stream(st, "sn_power_iteration_launch");
  const Plan p = make_plan(d);
  const bool vec = d.inner % 4 == 0 && aligned16(w);
  const dim3 grid(p.col_tiles, p.row_tiles), block(p.tx, p.ty);
  auto k1 = vec ? sn_colpass<true> : sn_colpass<false>;
  EMBER_LAUNCH(grid, block, 0, st, k1)(
      w, u, static_cast<int>(d.rows), static_cast<int>(d.cols), static_cast<int>(d.inner),
                             p.rows_per_tile, p.row_tiles, ws + p.p1, ws + p.vraw, ws + p.ssq);
  EMBER_CUDA_LAUNCH_CHECK("sn_colpass");
  launch_rowpass<true>(vec, p, grid, block, w, d, ws + p.vraw, ws, eps, v, u, sigma, st);
}

void sn_sigma_launch(const float* w, SnDims d, const float* u, const float* v, float* sigma, float* ws,
                     cudaStream_t st) {
  cuda_rt::check_stream(st, "sn_sigma_launch");
  const Plan p = make_plan(d);
  const bool vec = d.inner % 4 == 0 && aligned16(w);
  // Eval mode reads u and writes nothing but sigma: the u pointer is only read by this variant.
  launch_rowpass<false>(vec, p, dim3(p.col_tiles, p.row_tiles), dim3(p.tx, p.ty), w, d, v, ws, 1.0f, nullptr,
                        const_cast<float*>(u), sigma, st);
}

int64_t sn_group_workspace_floats(const SnGroupItem* items, int n) {
  int64_t total = 0;
  for (int i = 0; i < n; ++i) total += make_plan(items[i].d).total;
  return total;
}

void sn_group_step_launch(const SnGroupItem* items, int n, bool training, float* ws, cudaStream_t st) {
  cuda_rt::check_stream(st, "sn_group_step_launch");
  EMBER_CHECK(n >= 0 && (n == 0 || items != nullptr), "sn_group_step_launch: bad item list (" << n << " items)");
  GroupTable t{};
  int blocks = 0, tickets = 0;
  auto flush = [&]() {
    if (t.count == 0) return;
    if (training) {
      EMBER_LAUNCH(blocks, kBlockThreads, 0, st, sn_group_colpass)(t);
      EMBER_CUDA_LAUNCH_CHECK("sn_group_colpass");
      EMBER_LAUNCH(blocks, kBlockThreads, 0, st, sn_group_rowpass<true>)(t);
    } else {
      EMBER_LAUNCH(blocks, kBlockThreads, 0, st, sn_group_rowpass<false>)(t);
    }
    EMBER_CUDA_LAUNCH_CHECK("sn_group_rowpass");
    t = GroupTable{};
    blocks = tickets = 0;
  };
  for (int i = 0; i < n; ++i) {
    const SnGroupItem& it = items[i];
    const Plan p = make_plan(it.d);
    const int grid = p.col_tiles * p.row_tiles, slots = std::max(p.col_tiles, p.row_tiles) + 1;
    // A full table, or one more weight's ticket slots past the array: launch what is there.
    if (t.count == kSnGroupMax || tickets + slots > kMaxTiles + 1) flush();
    GroupEntry& e = t.e[t.count++];
    e.w = it.w;
    e.u = it.u;
    e.v = it.v;
    e.sigma = it.sigma;
    e.ws = ws;
    e.plan = p;
    e.eps = it.eps;
    e.rows = static_cast<int>(it.d.rows);
    e.cols = static_cast<int>(it.d.cols);
    e.inner = static_cast<int>(it.d.inner);
    e.first_block = blocks;
    e.ticket_base = tickets;
    e.vec = it.d.inner % 4 == 0 && aligned16(it.w);
    blocks += grid;
    tickets += slots;
    ws += p.total;
  }
  flush();
}

void sn_scale_launch(const float* w, const float* sigma, float* w_sn, int64_t n, cudaStream_t st) {
  cuda_rt::check_stream(st, "sn_scale_launch");
  if (n == 0) return;
  constexpr int threads = 256;
  if (n % 4 == 0 && aligned16(w) && aligned16(w_sn)) {
    EMBER_LAUNCH(elementwise_grid(n / 4, threads), threads, 0, st, sn_scale_vec)(
        reinterpret_cast<const float4*>(w), sigma, reinterpret_cast<float4*>(w_sn), n / 4);
  } else {
    EMBER_LAUNCH(elementwise_grid(n, threads), threads, 0, st, sn_scale_scalar)(w, sigma, w_sn, n);
  }
  EMBER_CUDA_LAUNCH_CHECK("sn_scale");
}

void sn_backward_launch(const float* w, SnDims d, const float* u, const float* v, const float* sigma, const float* g,
                        float* dw, float* ws, cudaStream_t st) {
  cuda_rt::check_stream(st, "sn_backward_launch");
  const Plan p = make_plan(d);
  const int64_t n = d.rows * d.cols;
  const bool vec = n % 4 == 0 && d.inner % 4 == 0 && aligned16(w) && aligned16(g) && aligned16(dw);
  const int64_t work = vec ? n / 4 : n;
  const unsigned blocks = static_cast<unsigned>(
      std::min<int64_t>({ceil_div(work, kDotThreads), 2LL * device_info().sm_count, kMaxDotBlocks}));
  float* coef = ws + p.scal;
  auto k1 = vec ? sn_grad_dot<true> : sn_grad_dot<false>;
  EMBER_LAUNCH(blocks, kDotThreads, 0, st, k1)(g, w, n, sigma, ws + p.dotp, coef);
  EMBER_CUDA_LAUNCH_CHECK("sn_grad_dot");
  auto k2 = vec ? sn_grad_apply<true> : sn_grad_apply<false>;
  EMBER_LAUNCH(elementwise_grid(work, 256), 256, 0, st, k2)(g, u, v, sigma, coef, n, static_cast<int>(d.rows),
                                                   static_cast<int>(d.inner), dw);
  EMBER_CUDA_LAUNCH_CHECK("sn_grad_apply");
}

}  // namespace ember::cuda

#ifndef EMBER_KERNELS_ONLY  // the kernel lab (kernels/lab/) runs the launchers above without tensors
// ---- the Tensor-level kernels of kernels/spectral_norm.inc --------------------------------------
namespace ember::cuda {

namespace {
SnDims dims_of(const Tensor& w, int dim) {
  const SnLayout l = sn_layout(w.shape(), dim);
  return {l.rows, l.cols(), l.inner};
}
Tensor workspace_for(SnDims d) { return Tensor::empty(Shape{sn_workspace_floats(d)}, Device::CUDA); }
}  // namespace

void spectral_norm_power_iteration(const Tensor& w, int dim, float eps, Tensor& u, Tensor& v, Tensor& sigma) {
  const SnDims d = dims_of(w, dim);
  Tensor ws = workspace_for(d);
  sn_power_iteration_launch(w.data(), d, eps, u.data(), v.data(), sigma.data(), ws.data(), stream());
}

void spectral_norm_sigma(const Tensor& w, int dim, const Tensor& u, const Tensor& v, Tensor& sigma) {
  const SnDims d = dims_of(w, dim);
  Tensor ws = workspace_for(d);
  sn_sigma_launch(w.data(), d, u.data(), v.data(), sigma.data(), ws.data(), stream());
}

void spectral_norm_step_group(const std::vector<SnStepItem>& items, bool training) {
  std::vector<SnGroupItem> g(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const SnStepItem& it = items[i];
    g[i] = {it.w.data(), dims_of(it.w, it.dim), it.eps, it.u.data(), it.v.data(), it.sigma.data()};
  }
  const int n = static_cast<int>(g.size());
  Tensor ws = Tensor::empty(Shape{std::max<int64_t>(1, sn_group_workspace_floats(g.data(), n))}, Device::CUDA);
  sn_group_step_launch(g.data(), n, training, ws.data(), stream());
}

void spectral_norm_scale(const Tensor& w, const Tensor& sigma, Tensor& w_sn) {
  sn_scale_launch(w.data(), sigma.data(), w_sn.data(), w.numel(), stream());
}

void spectral_norm_backward(const Tensor& w, int dim, const Tensor& u, const Tensor& v, const Tensor& sigma,
                            const Tensor& g, Tensor& dw) {
  const SnDims d = dims_of(w, dim);
  Tensor ws = workspace_for(d);
  sn_backward_launch(w.data(), d, u.data(), v.data(), sigma.data(), g.data(), dw.data(), ws.data(),
                            stream());
}

}  // namespace ember::cuda
#endif  // EMBER_KERNELS_ONLY
