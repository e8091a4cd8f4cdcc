// The SAGAN self-attention block on CUDA (kernels/attention_block.inc; reference:
// kernels/cpu/attention_block.cpp, which tests/test_attention_block.cpp checks against the
// composed ops).
//
// PASSES. Forward: article 2 launches, official 4 (q, then k and v pooled, in two projections):
//   1. block_project (one launch, the three projections as row segments of one grid): q, k, v
//      from x with 1/sigma read from device memory and the bias added in the epilogue, so
//      W / sigma is never written; official: the 2x2 max-pool done in the same epilogue (each
//      thread computes the four taps of its pooled outputs and keeps the first maximum), so the
//      full-resolution k, v never reach memory.
//   2. the attention core (kernels/cuda/attention.cu, FlashAttention-style, no N x M map).
//      Article: with the block's epilogue y = gamma att + x applied as each output tile is stored
//      (AttentionEpilogue), so the separate gamma-residual kernel and its read of att are gone.
//   3. official: block_project again as the output projection with the block's epilogue
//      y = x + gamma (W_o att) / sigma_o. It stays a launch of its own: a channel of y needs all
//      dv channels of att at its position, and an attention block owns at most 128 of them
//      (kDvChunk) for 64 queries; folding W_o in would mean a [C, dv] weight and a cross-chunk sum
//      per block, or one block per query tile holding all dv accumulators (dv = C/2 up to 256).
//
// THE ARTICLE EPILOGUE: WHAT IS SAVED (docs/kernels.md, "The fused block", has the table).
// Backward needs att = o twice: D_i = sum_c dO_ci o_ci (dO = gamma dy) and dgamma = sum dy . o.
// Three ways to have it, per pixel of the map (C floats = the article's dv):
//   composed (before):      attention writes o, gamma-residual reads o and x, writes y: 4 C floats,
//                           2 launches;
//   fused, o written too:   the attention store writes o and y, reads x: 3 C floats, 1 launch;
//   fused, o recomputed:    2 C floats in forward, then o again in backward, either as (y - x) /
//                           gamma, wrong at gamma = 0 (SAGAN's initial value) and inexact near it,
//                           or by a second attention forward: 2 N M (dk + dv) FLOPs against 8 dv N
//                           bytes saved, M (dk + dv) / (4 dv) FLOPs per byte: 288 at the article's
//                           32x32 map (C = 64), 20x an H200's fp32 balance (~14). Measured on the
//                           CPU at that shape (benchmarks/bench_attention_block --blocks 0): one
//                           attention forward costs 39x to 670x a copy of att.
// So training writes o and y from the one kernel (one launch and one read of o fewer than before),
// and eval / no-grad (sampling: BlockSaved::for_backward false) writes y alone.
// Backward: the epilogue's transpose (official: t = W_o^T dy / sigma_o, one block_project),
// dgamma = sum t . att and d att = gamma t (the gamma-residual backward: a deterministic tree
// sum), the attention backward, (official) the pre-pool k, v recomputed by block_project and
// the max-pool backward, dx = dy + sum_i W_i^T d_i / sigma_i (three accumulating block_project
// launches in a fixed order), the weight gradients (block_outer: per-slice partial sums over the
// batch, then block_outer_reduce summing the slices in order: no atomics, deterministic) and the
// bias gradients (bias_grad, a tree sum).
//
// WHAT BACKWARD SAVES (bytes per pixel, floats): q, k, v, att, lse as the attention backward
// needs them (dk + (dk + dv) M/N + dv + 1). The official variant's pre-pool maps are NOT saved:
// keeping them costs (dk + dv) = 0.625 C floats per pixel of memory held from forward to
// backward plus that write in forward; recomputing costs one read of x (C floats per pixel) and
// a [dk + dv, C] GEMM per pixel in backward, which in this launch- and memory-bound block is the
// cheaper side of the trade and keeps the forward's traffic minimal. The recomputation runs the
// same instruction sequence per element as the forward's fused pooling, so the argmax agrees.
//
// FLOOR of block_project: reads x once per 16-row tile of outputs (from L2 after the first),
// writes the outputs once; 2 rows x K FLOPs per output element.
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/common.cuh"

namespace ember::cuda {

namespace {

constexpr int kRowTile = 16;    // output rows per block
constexpr int kPosTile = 64;    // output positions per block (pooled positions when pooling)
constexpr int kKChunk = 16;     // reduction channels per shared-memory step
constexpr int kThreads = 256;   // 16 rows x 16 position lanes, 4 positions per lane

// One segment of output rows: out[b, r, p] for r < rows.
struct ProjSegment {
  const float* w = nullptr;      // [rows, K] (or [K, rows] when transposed)
  const float* bias = nullptr;   // [rows] or null
  const float* sigma = nullptr;  // [1] or null: the result is divided by *sigma
  float* out = nullptr;          // [B, rows, P]
  int rows = 0;
  int row_tiles = 0;             // ceil(rows / kRowTile)
};

// A block_project launch: up to three segments sharing the input.
//   val[b, r, p] = (sum_k W(r, k) in[b, k, pos(p)]) / sigma + bias[r]
//   pooled: p runs over the (H/2, W/2) grid and val is the first maximum over the 2x2 window
//   out = base + gamma val   (base: `residual`, or out itself when accumulate, else 0;
//                             gamma: *gamma, or 1 when null)
struct ProjArgs {
  ProjSegment seg[3];
  int nseg = 0;
  const float* in = nullptr;  // [B, K, H * W]
  int K = 0, H = 0, W = 0;
  bool pool = false, transposed = false, accumulate = false;
  const float* residual = nullptr;  // [B, rows, P] or null
  const float* gamma = nullptr;     // [1] or null
};

// Input position of tap t (0..3, row-major in the window) of pooled position p, or p itself.
__device__ __forceinline__ int input_pos(int p, int t, bool pool, int W) {
  if (!pool) return p;
  const int wp = W / 2, py = p / wp, px = p % wp;
  return (2 * py + (t >> 1)) * W + 2 * px + (t & 1);
}

// The projection GEMM with the block's epilogues (see ProjArgs). Grid (ceil(P / 64), row tiles
// of all segments, B), 256 threads: thread (ty, tx) computes row ty of the tile at positions
// tx + 16 i, i < 4, for each of its taps (1, or 4 when pooling).
__global__ void __launch_bounds__(kThreads) block_project(ProjArgs a) {
  EMBER_SHARED(float, ws, [kRowTile][kKChunk + 1]);
  EMBER_SHARED(float, xs, [kKChunk][4 * kPosTile]);
  int tile = blockIdx.y, s = 0;
  while (s + 1 < a.nseg && tile >= a.seg[s].row_tiles) tile -= a.seg[s++].row_tiles;
  const ProjSegment& seg = a.seg[s];
  const int b = blockIdx.z, r0 = tile * kRowTile, p0 = blockIdx.x * kPosTile;
  const int taps = a.pool ? 4 : 1, N = a.H * a.W, P = a.pool ? N / 4 : N;
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  const float* in = a.in + static_cast<int64_t>(b) * a.K * N;
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int t = 0; t < 4; ++t) acc[i][t] = 0.f;

  for (int k0 = 0; k0 < a.K; k0 += kKChunk) {
    {  // the weight tile: one element per thread
      const int rr = tid / kKChunk, kk = tid % kKChunk, r = r0 + rr, k = k0 + kk;
      float w = 0.f;
      if (r < seg.rows && k < a.K) w = a.transposed ? seg.w[static_cast<int64_t>(k) * seg.rows + r]
                                                    : seg.w[static_cast<int64_t>(r) * a.K + k];
      ws[rr][kk] = w;
    }
    for (int e = tid; e < kKChunk * taps * kPosTile; e += kThreads) {  // the input tile (gathered)
      const int kk = e / (taps * kPosTile), rest = e % (taps * kPosTile), t = rest / kPosTile, j = rest % kPosTile;
      const int k = k0 + kk, p = p0 + j;
      xs[kk][t * kPosTile + j] = (k < a.K && p < P) ? in[static_cast<int64_t>(k) * N + input_pos(p, t, a.pool, a.W)] : 0.f;
    }
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < kKChunk; ++kk) {
      const float w = ws[ty][kk];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        for (int t = 0; t < taps; ++t) acc[i][t] = fmaf(w, xs[kk][t * kPosTile + tx + 16 * i], acc[i][t]);
    }
    __syncthreads();
  }

  const int r = r0 + ty;
  if (r >= seg.rows) return;
  const float inv_sigma = seg.sigma ? 1.f / *seg.sigma : 1.f;
  const float bias = seg.bias ? seg.bias[r] : 0.f;
  const float g = a.gamma ? *a.gamma : 1.f;
  float* out = seg.out + (static_cast<int64_t>(b) * seg.rows + r) * P;
  const float* res = a.residual ? a.residual + (static_cast<int64_t>(b) * seg.rows + r) * P : nullptr;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int p = p0 + tx + 16 * i;
    if (p >= P) continue;
    // Rounded step by step (no contraction) so that the pooled and the unpooled launches give
    // the same value per tap (the backward's argmax relies on it).
    float val = __fadd_rn(__fmul_rn(acc[i][0], inv_sigma), bias);
    for (int t = 1; t < taps; ++t) {  // first maximum; a NaN wins (as maxpool2x2)
      const float v = __fadd_rn(__fmul_rn(acc[i][t], inv_sigma), bias);
      if (v > val || isnan(v)) val = v;
    }
    const float base = res ? res[p] : (a.accumulate ? out[p] : 0.f);
    out[p] = a.gamma ? base + g * val : base + val;
  }
}

// Weight gradient partial sums: part[s, r, c] = sum over b in slice s, n < N of A[b, r, n] X[b, c, n].
// Grid (ceil(C / 16), ceil(R / 16), slices), 256 threads, one output per thread; n in steps of 32.
__global__ void __launch_bounds__(kThreads) block_outer(const float* A, const float* X, int B, int R, int C, int N,
                                                        int per_slice, float* part) {
  EMBER_SHARED(float, as, [16][33]);
  EMBER_SHARED(float, xs, [16][33]);
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  const int r0 = blockIdx.y * 16, c0 = blockIdx.x * 16, s = blockIdx.z;
  const int b_end = min(B, (s + 1) * per_slice);
  float acc = 0.f;
  for (int b = s * per_slice; b < b_end; ++b) {
    const float* Ab = A + static_cast<int64_t>(b) * R * N;
    const float* Xb = X + static_cast<int64_t>(b) * C * N;
    for (int n0 = 0; n0 < N; n0 += 32) {
      for (int e = tid; e < 16 * 32; e += kThreads) {
        const int row = e / 32, n = n0 + e % 32;
        as[row][e % 32] = (r0 + row < R && n < N) ? Ab[static_cast<int64_t>(r0 + row) * N + n] : 0.f;
        xs[row][e % 32] = (c0 + row < C && n < N) ? Xb[static_cast<int64_t>(c0 + row) * N + n] : 0.f;
      }
      __syncthreads();
#pragma unroll 8
      for (int n = 0; n < 32; ++n) acc = fmaf(as[ty][n], xs[tx][n], acc);
      __syncthreads();
    }
  }
  if (r0 + ty < R && c0 + tx < C) part[(static_cast<int64_t>(s) * R + r0 + ty) * C + c0 + tx] = acc;
}

// G[e] = scale (sum over slices s, in order, of part[s, e]); scale = *alpha or 1.
__global__ void block_outer_reduce(int64_t n, const float* part, int slices, const float* alpha, float* G) {
  const int64_t e = global_index();
  if (e >= n) return;
  float sum = 0.f;
  for (int s = 0; s < slices; ++s) sum += part[s * n + e];
  G[e] = alpha ? *alpha * sum : sum;
}

ProjSegment segment(const BlockWeight& p, Tensor& out) {
  ProjSegment s;
  s.w = p.weight.data();
  s.bias = p.bias.defined() ? p.bias.data() : nullptr;
  s.sigma = p.sigma.defined() ? p.sigma.data() : nullptr;
  s.out = out.data();
  s.rows = static_cast<int>(out.size(1));
  s.row_tiles = (s.rows + kRowTile - 1) / kRowTile;
  return s;
}

void launch_project(ProjArgs a, int B, int P) {
  int tiles = 0;
  for (int s = 0; s < a.nseg; ++s) tiles += a.seg[s].row_tiles;
  EMBER_CHECK(B <= 65535 && tiles <= 65535, "self_attention_block (cuda): batch " << B << " or " << tiles
                                                                                   << " row tiles exceed the grid");
  dim3 grid((P + kPosTile - 1) / kPosTile, tiles, B);
  EMBER_LAUNCH(grid, kThreads, 0, stream(), block_project)(a);
  EMBER_CUDA_LAUNCH_CHECK();
}

// One projection: out [B, rows, P] from in [B, K, H, W-ish] (see ProjArgs for the flags).
ProjArgs one_segment(const BlockWeight& p, Tensor& out, const Tensor& in, int K, int H, int W) {
  ProjArgs a;
  a.seg[0] = segment(p, out);
  a.nseg = 1;
  a.in = in.data();
  a.K = K, a.H = H, a.W = W;
  return a;
}

// G [R, C] = alpha sum_b A_b [R, N] X_b^T [N, C]; alpha = *alpha or 1.
void outer_sum(const Tensor& A, const Tensor& X, const float* alpha, Tensor& G) {
  const int B = static_cast<int>(A.size(0)), R = static_cast<int>(A.size(1)), C = static_cast<int>(X.size(1));
  const int N = static_cast<int>(A.numel() / (int64_t{B} * R));
  const int tiles = ((R + 15) / 16) * ((C + 15) / 16);
  const int slices = std::max(1, std::min(B, 256 / tiles)), per = (B + slices - 1) / slices;
  const int used = (B + per - 1) / per;
  DeviceBuffer<float> part(static_cast<size_t>(used) * R * C);
  dim3 grid((C + 15) / 16, (R + 15) / 16, used);
  float* pp = part.data();
  EMBER_LAUNCH(grid, kThreads, 0, stream(), block_outer)(A.data(), X.data(), B, R, C, N, per, pp);
  EMBER_CUDA_LAUNCH_CHECK();
  linear_kernel(block_outer_reduce, 0, stream(), int64_t{R} * C, static_cast<const float*>(pp), used, alpha,
                G.data());
}

struct Dims {
  int B, C, H, W, N, dk, dv, M;
};

// The transpose of a projection: out [B, in, N] = W^T d / sigma for d [B, K = out rows of W, N]
// (no bias).
ProjArgs transposed(const BlockWeight& p, Tensor& out, const Tensor& d, int K, const Dims& dims) {
  ProjArgs a = one_segment(p, out, d, K, dims.H, dims.W);
  a.transposed = true;
  a.seg[0].bias = nullptr;
  return a;
}

Dims dims_of(const Tensor& x, const BlockWeights& p, bool official) {
  const int H = static_cast<int>(x.size(2)), W = static_cast<int>(x.size(3));
  return Dims{static_cast<int>(x.size(0)), static_cast<int>(x.size(1)), H, W, H * W,
              static_cast<int>(p[kQuery].weight.size(0)), static_cast<int>(p[kValue].weight.size(0)),
              official ? (H / 2) * (W / 2) : H * W};
}

}  // namespace

void attention_block_forward(const Tensor& x, const BlockWeights& p, const Tensor& gamma, bool official, Tensor& y,
                             BlockSaved& s) {
  EMBER_CHECK(x.numel() < (int64_t{1} << 31), "self_attention_block (cuda): input " << x.shape() << " too large");
  const Dims d = dims_of(x, p, official);
  s.q = Tensor::empty(Shape{d.B, d.dk, d.N}, Device::CUDA);
  s.k = Tensor::empty(Shape{d.B, d.dk, d.M}, Device::CUDA);
  s.v = Tensor::empty(Shape{d.B, d.dv, d.M}, Device::CUDA);
  // att: the official output projection reads it; the article's backward reads it (training only).
  if (official || s.for_backward) s.att = Tensor::empty(Shape{d.B, d.dv, d.N}, Device::CUDA);
  s.lse = Tensor::empty(Shape{d.B, d.N}, Device::CUDA);

  // 1. q (full resolution) in one launch with k, v (pooled in the epilogue when official): the
  //    pooled launch covers every segment's positions P = M, so q goes separately then.
  if (official) {
    launch_project(one_segment(p[kQuery], s.q, x, d.C, d.H, d.W), d.B, d.N);
    ProjArgs a = one_segment(p[kKey], s.k, x, d.C, d.H, d.W);
    a.seg[1] = segment(p[kValue], s.v);
    a.nseg = 2;
    a.pool = true;
    launch_project(a, d.B, d.M);
  } else {
    ProjArgs a = one_segment(p[kQuery], s.q, x, d.C, d.H, d.W);
    a.seg[1] = segment(p[kKey], s.k);
    a.seg[2] = segment(p[kValue], s.v);
    a.nseg = 3;
    launch_project(a, d.B, d.N);
  }
  // 2. The attention core; article: with the block's epilogue y = gamma att + x in its store.
  if (official) {
    attention_forward(s.q, s.k, s.v, s.att, s.lse);
  } else {
    attention_forward_residual(attention_default_variant(), s.q, s.k, s.v, gamma, x, s.att, y, s.lse);
    return;
  }
  // 3. Official: the output projection (it needs all dv channels of att at a position, which one
  //    attention block, owning <= 128 of them, does not have) with the epilogue y = x + gamma W_o att / sigma_o.
  ProjArgs a = one_segment(p[kOut], y, s.att, d.dv, d.H, d.W);
  a.residual = x.data();
  a.gamma = gamma.data();
  launch_project(a, d.B, d.N);
}

void attention_block_backward(const Tensor& x, const BlockWeights& p, const Tensor& gamma, bool official,
                              const BlockSaved& s, const Tensor& dy, Tensor& dx, Tensor (&weight_grad)[4],
                              Tensor (&bias_grads)[4], Tensor& dgamma) {
  const Dims d = dims_of(x, p, official);
  // 1. The epilogue's transpose: t = W_o^T dy / sigma_o (official) or dy; dgamma = sum t . att,
  //    d att = gamma t.
  Tensor datt = Tensor::empty(s.att.shape(), Device::CUDA);
  if (official) {
    Tensor t = Tensor::empty(s.att.shape(), Device::CUDA);
    launch_project(transposed(p[kOut], t, dy, d.C, d), d.B, d.N);
    gamma_residual_backward(gamma, s.att, t, dgamma, datt);
    outer_sum(dy, s.att, gamma.data(), weight_grad[kOut]);  // gamma sum_b dy_b att_b^T
  } else {
    gamma_residual_backward(gamma, s.att, dy, dgamma, datt);
  }
  // 2. The attention core's backward.
  Tensor dq = Tensor::empty(s.q.shape(), Device::CUDA), dk = Tensor::empty(s.k.shape(), Device::CUDA),
         dv = Tensor::empty(s.v.shape(), Device::CUDA);
  attention_backward(s.q, s.k, s.v, s.att, s.lse, datt, dq, dk, dv);
  // 3. Official: the pre-pool maps recomputed, then the max-pool backward to full resolution.
  if (official) {
    Tensor kfull = Tensor::empty(Shape{d.B, d.dk, d.H, d.W}, Device::CUDA);
    Tensor vfull = Tensor::empty(Shape{d.B, d.dv, d.H, d.W}, Device::CUDA);
    ProjArgs a = one_segment(p[kKey], kfull, x, d.C, d.H, d.W);
    a.seg[1] = segment(p[kValue], vfull);
    a.nseg = 2;
    launch_project(a, d.B, d.N);
    Tensor dk_full = Tensor::empty(kfull.shape(), Device::CUDA), dv_full = Tensor::empty(vfull.shape(), Device::CUDA);
    maxpool2x2_backward(kfull, dk.reshape({d.B, d.dk, d.H / 2, d.W / 2}), dk_full);
    maxpool2x2_backward(vfull, dv.reshape({d.B, d.dv, d.H / 2, d.W / 2}), dv_full);
    dk = dk_full.reshape({d.B, d.dk, d.N});
    dv = dv_full.reshape({d.B, d.dv, d.N});
  }
  // 4. dx = dy + sum_i W_i^T d_i / sigma_i, in a fixed order.
  const Tensor* dmaps[3] = {&dq, &dk, &dv};
  for (int i = kQuery; i <= kValue; ++i) {
    ProjArgs a = transposed(p[i], dx, *dmaps[i], static_cast<int>(p[i].weight.size(0)), d);
    if (i == kQuery) a.residual = dy.data();
    else a.accumulate = true;
    launch_project(a, d.B, d.N);
  }
  // 5. Weight and bias gradients.
  for (int i = kQuery; i <= kValue; ++i) {
    outer_sum(*dmaps[i], x, nullptr, weight_grad[i]);
    if (p[i].bias.defined()) bias_grad(*dmaps[i], bias_grads[i]);
  }
}

}  // namespace ember::cuda
