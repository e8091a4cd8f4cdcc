// Fused attention for the SAGAN block (the CUDA side of kernels/attention.inc):
//   q [B, dk, N], k [B, dk, M], v [B, dv, M] -> o [B, dv, N], lse [B, N]
//   s_ij = q_i . k_j (no 1/sqrt(dk), as in SAGAN), p_ij = softmax_j(s_ij), o_i = sum_j p_ij v_j.
// Head dims are small (dk = C/8: 1..64) and the value dim is large (dv = C or C/2: up to 512); the
// layout is channel-major, so a channel's positions are contiguous and tile loads are coalesced.
//
// ALGORITHM (FlashAttention-2, adapted). The N x M score map is never written to memory.
// Forward: a block owns 64 queries (16 per warp) and a chunk of <= 128 value channels (grid.y).
// It walks the keys in tiles of 32: S = Q^T K for the tile (tensor cores or FMA), then the online
// softmax per query row:  m' = max(m, max_j s_j),  l' = l e^(m - m') + sum_j e^(s_j - m'),
// O' = O e^(m - m') + sum_j e^(s_j - m') v_j,  and at the end o = O / l, lse = m + log l.
// P goes through a per-warp shared-memory tile into the product with the value tile.
// EPILOGUE (optional, AttentionEpilogue): as each output tile is stored, y = gamma o + residual
// is written too (the SAGAN article block's last step, kernels/cuda/attention_block.cu), and o
// itself only when wanted (training keeps it for backward; eval writes y alone): one read of the
// residual replaces the separate gamma-residual kernel's reads of o and x.
// Backward, given dO (recomputing p_ij = exp(s_ij - lse_i), so nothing N x M was stored):
//   D_i = sum_c dO[c,i] o[c,i]               kernel attn_rowdot (one pass over o and dO)
//   dv_j = sum_i p_ij dO_i                   kernel attn_bwd_dv: per key tile and value chunk
//   dS_ij = p_ij (dP_ij - D_i), dP_ij = dO_i . v_j
//   dk_j = sum_i dS_ij q_i                   kernel attn_bwd_dk: per key tile, v resident
//   dq_i = sum_j dS_ij k_j                   kernel attn_bwd_dq: per query tile, dO resident
// dK and dQ are computed by two kernels that each recompute S and dP instead of one kernel with
// atomic adds into dq: every output is written once by one block, so results are deterministic.
//
// VARIANTS (AttentionVariant in attention.cuh; every kernel is templated on the precision of its
// two kinds of product, sharing all indexing):
//   Simt   - fp32 FMA; each lane computes the same fragment elements an mma would own.
//   Tf32   - mma.sync m16n8k8 TF32 tensor cores; S in 3xTF32 (hi*hi + hi*lo + lo*hi), because an
//            error in a score is exponentiated; products with P, dS, v, dO in 1xTF32.
//   Tf32x3 - every product in 3xTF32: fp32-class accuracy on tensor cores.
//
// FLOPs (one multiply-add = 2), for B batches, N queries, M keys:
//   forward, necessary:        2 B N M (dk + dv)          + B N M exponentials
//   forward, executed here:    2 B N M (dk ceil(dv/128) + dv)   (S recomputed per value chunk)
//   backward, necessary:       2 B N M (3 dk + 2 dv)      + 2 B N dv for D  (S recomputed once)
//   backward, executed here:   2 B N M (dk (ceil(dv/128) + 4) + 3 dv)   (dP computed twice)
//   (3xTF32 runs three tensor-core passes per counted product.)
// MEMORY FLOOR: forward reads q, k, v once and writes o and lse: 4 B (dk N + dk M + dv M + dv N + N)
// bytes; backward reads q, k, v, o, dO, lse and writes dq, dk, dv. Both are O(B (N + M) (dk + dv)),
// never O(B N M): with N = M = 4096 the work is ~1000 FLOPs per byte, so these kernels are bound by
// arithmetic, not bandwidth. Device memory used: the outputs plus a [B, N] buffer for D.
//
// Structure (ggml style): the __global__ kernels live in attention_kernels.cuh; this file holds the
// launchers (grid arithmetic, shared-memory sizing) and the dispatch entries at its end.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#ifndef EMBER_KERNELS_ONLY
#include "core/context.h"
#endif
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_kernels.cuh"
#include "kernels/cuda/common.cuh"

namespace ember::cuda {

namespace {


// ---- launchers --------------------------------------------------------------------------------------

Shapes make_shapes(int64_t N, int64_t M, int64_t dk, int64_t dv) {
  Shapes s;
  s.N = static_cast<int>(N);
  s.M = static_cast<int>(M);
  s.dk = static_cast<int>(dk);
  s.dv = static_cast<int>(dv);
  s.dk_pad = round8(s.dk);
  s.dv_pad = round8(s.dv);
  return s;
}

// q [B, dk, N], v [B, dv, M].
void check_supported(const char* op, int64_t B, int64_t N, int64_t M, int64_t dk, int64_t dv) {
  EMBER_CHECK(dk <= kMaxDk, op << " (cuda): head dimension dk = " << dk << " exceeds the fused kernel's limit of "
                               << kMaxDk);
  EMBER_CHECK(B <= 65535, op << " (cuda): batch " << B << " exceeds 65535 (grid.z)");
  EMBER_CHECK(N < (int64_t{1} << 30) && dv * M < (int64_t{1} << 31),
              op << " (cuda): sizes too large for 32-bit tile indexing: N " << N << ", dv " << dv << ", M " << M);
}

template <Prec SP, Prec BP>
void launch_forward(const float* q, const float* k, const float* v, float* o, float* lse, int B, const Shapes& s,
                    cudaStream_t st, const AttentionEpilogue& ep) {
  const size_t smem = fwd_smem(s);
  auto kernel = attn_fwd<SP, BP>;
  allow_smem(kernel, smem);
  dim3 grid(blocks(s.N, kMaxWarps * kWarpRows), blocks(s.dv, kDvChunk, 65535), static_cast<unsigned>(B));
  EMBER_LAUNCH(grid, kMaxWarps * 32, smem, st, kernel)(q, k, v, o, lse, s, ep);
  EMBER_CUDA_LAUNCH_CHECK();
}

#ifndef EMBER_KERNELS_ONLY
Shapes shapes_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return make_shapes(q.size(2), k.size(2), q.size(1), v.size(1));
}

void check_supported(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  check_supported(op, q.size(0), q.size(2), k.size(2), q.size(1), v.size(1));
}

template <Prec SP, Prec BP>
void launch_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                     const Tensor& d_o, Tensor& dq, Tensor& dk, Tensor& dv) {
  const Shapes s = shapes_of(q, k, v);
  const int B = static_cast<int>(q.size(0));
  cudaStream_t st = cuda_rt::stream();
  Tensor D = Tensor::empty(Shape{q.size(0), q.size(2)}, Device::CUDA);  // [B, N]
  EMBER_LAUNCH(blocks(int64_t{B} * s.N, 256), 256, 0, st, attn_rowdot)(o.data(), d_o.data(), D.data(), B, s.N, s.dv);
  EMBER_CUDA_LAUNCH_CHECK();

  {
    const size_t smem = dv_smem(s);
    auto kernel = attn_bwd_dv<SP, BP>;
    allow_smem(kernel, smem);
    dim3 grid(blocks(s.M, kMaxWarps * kWarpRows), blocks(s.dv, kDvChunk, 65535), B);
    EMBER_LAUNCH(grid, kMaxWarps * 32, smem, st, kernel)(q.data(), k.data(), lse.data(), d_o.data(), dv.data(), s);
    EMBER_CUDA_LAUNCH_CHECK();
  }
  const int nw = dkdq_warps(s, device_info().max_smem_optin);
  const size_t smem = dkdq_smem(s, nw);
  {
    auto kernel = attn_bwd_dk<SP, BP>;
    allow_smem(kernel, smem);
    dim3 grid(blocks(s.M, nw * kWarpRows), 1, B);
    EMBER_LAUNCH(grid, nw * 32, smem, st, kernel)(
        q.data(), k.data(), v.data(), lse.data(), D.data(), d_o.data(), dk.data(), s);
    EMBER_CUDA_LAUNCH_CHECK();
  }
  {
    auto kernel = attn_bwd_dq<SP, BP>;
    allow_smem(kernel, smem);
    dim3 grid(blocks(s.N, nw * kWarpRows), 1, B);
    EMBER_LAUNCH(grid, nw * 32, smem, st, kernel)(
        q.data(), k.data(), v.data(), lse.data(), D.data(), d_o.data(), dq.data(), s);
    EMBER_CUDA_LAUNCH_CHECK();
  }
}

#endif  // EMBER_KERNELS_ONLY

bool device_has_tf32() {
  int dev = 0, major = 0;
  EMBER_CUDA_CHECK(cudaGetDevice(&dev));
  EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  return major >= 8;
}

}  // namespace

// ---- entries ---------------------------------------------------------------------------------------

const char* attention_variant_name(AttentionVariant v) {
  switch (v) {
    case AttentionVariant::Simt: return "simt-fp32";
    case AttentionVariant::Tf32: return "tf32";
    case AttentionVariant::Tf32x3: return "3xtf32";
  }
  return "?";
}

void attention_forward_launch(AttentionVariant variant, const float* q, const float* k, const float* v, float* o,
                              float* lse, int64_t B, int64_t N, int64_t M, int64_t dk, int64_t dv, cudaStream_t st,
                              const AttentionEpilogue& ep) {
  cuda_rt::check_stream(st, "attention_forward_launch");
  check_supported("attention", B, N, M, dk, dv);
  EMBER_CHECK(!ep.y || (ep.gamma && ep.residual), "attention (cuda): the epilogue y = gamma o + residual needs "
                                                      << (ep.gamma ? "the residual" : "gamma"));
  EMBER_CHECK(o || ep.y, "attention (cuda): neither o nor an epilogue output y to write");
  EMBER_CHECK(!ep.y || (ep.y != o && ep.y != ep.residual),
              "attention (cuda): the epilogue output y may not alias o or the residual (other blocks read it)");
  EMBER_CHECK(variant == AttentionVariant::Simt || device_has_tf32(),
              "attention (cuda): variant " << attention_variant_name(variant) << " needs sm_80 or later");
  const Shapes s = make_shapes(N, M, dk, dv);
  const int b = static_cast<int>(B);
  switch (variant) {
    case AttentionVariant::Simt: launch_forward<Prec::kSimt, Prec::kSimt>(q, k, v, o, lse, b, s, st, ep); break;
    case AttentionVariant::Tf32: launch_forward<Prec::kTf32x3, Prec::kTf32>(q, k, v, o, lse, b, s, st, ep); break;
    case AttentionVariant::Tf32x3: launch_forward<Prec::kTf32x3, Prec::kTf32x3>(q, k, v, o, lse, b, s, st, ep); break;
  }
}

#ifndef EMBER_KERNELS_ONLY  // the kernel lab (kernels/lab/) runs the launcher above without tensors
AttentionVariant attention_default_variant() {
  if (!device_has_tf32()) return AttentionVariant::Simt;
  return context().allow_tf32 ? AttentionVariant::Tf32 : AttentionVariant::Tf32x3;
}

void attention_forward_variant(AttentionVariant variant, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                               Tensor& lse) {
  attention_forward_launch(variant, q.data(), k.data(), v.data(), o.data(), lse.data(), q.size(0), q.size(2),
                           k.size(2), q.size(1), v.size(1), cuda_rt::stream());
}

void attention_forward_residual(AttentionVariant variant, const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& gamma, const Tensor& residual, Tensor& o, Tensor& y, Tensor& lse) {
  const int64_t out = q.size(0) * v.size(1) * q.size(2);  // B dv N
  EMBER_CHECK(gamma.numel() == 1 && residual.numel() == out && y.numel() == out && (!o.defined() || o.numel() == out),
              "attention with the residual epilogue (cuda): gamma must have 1 element and the residual, y and o "
                  << out << " (B dv N), got " << gamma.shape() << ", " << residual.shape() << ", " << y.shape()
                  << (o.defined() ? ", " + o.shape().str() : std::string(", (no o)")));
  AttentionEpilogue ep;
  ep.gamma = gamma.data();
  ep.residual = residual.data();
  ep.y = y.data();
  attention_forward_launch(variant, q.data(), k.data(), v.data(), o.defined() ? o.data() : nullptr, lse.data(),
                           q.size(0), q.size(2), k.size(2), q.size(1), v.size(1), cuda_rt::stream(), ep);
}

void attention_backward_variant(AttentionVariant variant, const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& o, const Tensor& lse, const Tensor& d_o, Tensor& dq, Tensor& dk,
                                Tensor& dv) {
  check_supported("attention backward", q, k, v);
  EMBER_CHECK(variant == AttentionVariant::Simt || device_has_tf32(),
              "attention backward (cuda): variant " << attention_variant_name(variant) << " needs sm_80 or later");
  switch (variant) {
    case AttentionVariant::Simt:
      launch_backward<Prec::kSimt, Prec::kSimt>(q, k, v, o, lse, d_o, dq, dk, dv);
      break;
    case AttentionVariant::Tf32:
      launch_backward<Prec::kTf32x3, Prec::kTf32>(q, k, v, o, lse, d_o, dq, dk, dv);
      break;
    case AttentionVariant::Tf32x3:
      launch_backward<Prec::kTf32x3, Prec::kTf32x3>(q, k, v, o, lse, d_o, dq, dk, dv);
      break;
  }
}

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o, Tensor& lse) {
  attention_forward_variant(attention_default_variant(), q, k, v, o, lse);
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o, const Tensor& lse,
                        const Tensor& d_o, Tensor& dq, Tensor& dk, Tensor& dv) {
  attention_backward_variant(attention_default_variant(), q, k, v, o, lse, d_o, dq, dk, dv);
}

void attention_probs(const Tensor& q, const Tensor& k, const Tensor& query_idx, Tensor& probs) {
  const int N = static_cast<int>(q.size(2)), M = static_cast<int>(k.size(2)), dk = static_cast<int>(q.size(1));
  EMBER_CHECK(query_idx.numel() < (int64_t{1} << 31) && q.size(0) <= 65535,
              "attention_probs (cuda): " << query_idx.numel() << " queries x batch " << q.size(0) << " exceed the grid");
  const int nq = static_cast<int>(query_idx.numel());
  const size_t smem = sizeof(float) * (dk + 32);
  EMBER_CHECK(smem <= kDefaultSmemBytes, "attention_probs (cuda): head dimension " << dk << " is too large");
  dim3 grid(static_cast<unsigned>(nq), static_cast<unsigned>(q.size(0)));
  EMBER_LAUNCH(grid, 256, smem, cuda_rt::stream(), attn_probs)(
      q.data(), k.data(), query_idx.data(), probs.data(), N, M, dk, nq);
  EMBER_CUDA_LAUNCH_CHECK();
}

#endif  // EMBER_KERNELS_ONLY

}  // namespace ember::cuda
