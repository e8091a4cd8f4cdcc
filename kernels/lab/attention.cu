// Kernel lab: SAGAN self-attention forward, from three unfused kernels to the production fused ones.
//
//   nvcc -std=c++17 -O3 -arch=sm_90 --expt-relaxed-constexpr -I. kernels/lab/attention.cu -o lab_attention
//   ./lab_attention [--version K|all] [--B b] [--N n] [--M m] [--dk d] [--dv d] [--block T] [--runs N]
//
// (from the repository root; CMake builds it as lab_attention, and as lab_attention_emu on the CPU
// emulation of CUDA, which runs every version without a GPU: docs/kernels.md, "The kernel lab").
//
// q [B, dk, N], k [B, dk, M], v [B, dv, M] -> o [B, dv, N], lse [B, N] (channel-major, as a 1x1
// convolution of NCHW data leaves them):
//   s_ij = sum_c q[c][i] k[c][j]  (no 1/sqrt(dk), as in SAGAN),  p_ij = softmax_j(s_ij),
//   o[c][i] = sum_j p_ij v[c][j],  lse_i = log sum_j e^(s_ij).
// 2 B N M (dk + dv) FLOPs; the fused kernels move only q, k, v, o (compute-bound for large N, M).
//
// The ladder (--block sets the threads per block of versions 1-2):
//   1. unfused      three kernels: S = Q^T K into a [B, N, M] buffer, a row softmax in place (P),
//                   O = V P^T. Memory grows as B N M and the map is written and read twice.
//   2. flash-scalar one thread per query, plain loops, no N x M buffer: for each key, the online
//                   softmax m' = max(m, s), l' = l e^(m - m') + e^(s - m'), and the running output
//                   (kept in o itself) rescaled the same way. Correct, but every key re-reads the
//                   thread's dv outputs and nothing is shared between threads.
//   3-5. the production kernels of kernels/cuda/attention_kernels.cuh through the launcher of
//                   kernels/cuda/attention.cu (compiled from those files): 64 queries per block,
//                   key/value tiles in shared memory, per-warp 16 x 32 score tiles; products in fp32
//                   FMAs (simt), on TF32 tensor cores with 3xTF32 scores (tf32), or all in 3xTF32.
#include "kernels/lab/lab.cuh"
#include "kernels/cuda/attention.cu"  // the shipped kernels and their launcher (ember::cuda)

namespace lab {

// ---- 1. unfused: scores, softmax, weighted sum ----------------------------------------------------
// S[b][i][j], one thread per score; consecutive threads take consecutive keys j (coalesced k reads).
__global__ void attn_unfused_scores(const float* q, const float* k, float* S, int B, int N, int M, int dk) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= static_cast<int64_t>(B) * N * M) return;
  const int j = static_cast<int>(t % M), i = static_cast<int>(t / M % N), b = static_cast<int>(t / M / N);
  float s = 0.f;
  for (int c = 0; c < dk; ++c) s += q[(static_cast<int64_t>(b) * dk + c) * N + i] * k[(static_cast<int64_t>(b) * dk + c) * M + j];
  S[t] = s;
}

// A thread per row of S: P = softmax(S) in place, and lse.
__global__ void attn_unfused_softmax(float* S, float* lse, int64_t rows, int M) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float* row = S + r * M;
  float m = -INFINITY, l = 0.f;
  for (int j = 0; j < M; ++j) m = fmaxf(m, row[j]);
  for (int j = 0; j < M; ++j) l += expf(row[j] - m);
  for (int j = 0; j < M; ++j) row[j] = expf(row[j] - m) / l;
  lse[r] = m + logf(l);
}

// o[b][c][i], one thread per output; consecutive threads take consecutive queries i.
__global__ void attn_unfused_weighted(const float* P, const float* v, float* o, int B, int N, int M, int dv) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= static_cast<int64_t>(B) * dv * N) return;
  const int i = static_cast<int>(t % N), c = static_cast<int>(t / N % dv), b = static_cast<int>(t / N / dv);
  const float* p = P + (static_cast<int64_t>(b) * N + i) * M;
  const float* vc = v + (static_cast<int64_t>(b) * dv + c) * M;
  float acc = 0.f;
  for (int j = 0; j < M; ++j) acc += p[j] * vc[j];
  o[t] = acc;
}

// ---- 2. scalar FlashAttention: a thread per query, online softmax over the keys -------------------
__global__ void attn_flash_scalar(const float* q, const float* k, const float* v, float* o, float* lse, int B, int N,
                                  int M, int dk, int dv) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= static_cast<int64_t>(B) * N) return;
  const int i = static_cast<int>(t % N), b = static_cast<int>(t / N);
  const float* qb = q + static_cast<int64_t>(b) * dk * N;
  const float* kb = k + static_cast<int64_t>(b) * dk * M;
  const float* vb = v + static_cast<int64_t>(b) * dv * M;
  float* ob = o + static_cast<int64_t>(b) * dv * N;
  for (int c = 0; c < dv; ++c) ob[static_cast<int64_t>(c) * N + i] = 0.f;
  float m = -INFINITY, l = 0.f;
  for (int j = 0; j < M; ++j) {
    float s = 0.f;
    for (int c = 0; c < dk; ++c) s += qb[static_cast<int64_t>(c) * N + i] * kb[static_cast<int64_t>(c) * M + j];
    const float m_new = fmaxf(m, s);
    const float scale = expf(m - m_new);  // e^(-inf) = 0 for the first key
    const float p = expf(s - m_new);
    l = l * scale + p;
    for (int c = 0; c < dv; ++c) {
      float& acc = ob[static_cast<int64_t>(c) * N + i];
      acc = acc * scale + p * vb[static_cast<int64_t>(c) * M + j];
    }
    m = m_new;
  }
  for (int c = 0; c < dv; ++c) ob[static_cast<int64_t>(c) * N + i] /= l;
  lse[t] = m + logf(l);
}

// ---- the CPU reference, in double ---------------------------------------------------------------
void reference(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v, int B, int N,
               int M, int dk, int dv, std::vector<double>& o, std::vector<double>& lse) {
  o.assign(static_cast<size_t>(B) * dv * N, 0.0);
  lse.assign(static_cast<size_t>(B) * N, 0.0);
  std::vector<double> s(M);
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < N; ++i) {
      double m = -INFINITY, l = 0;
      for (int j = 0; j < M; ++j) {
        double acc = 0;
        for (int c = 0; c < dk; ++c)
          acc += static_cast<double>(q[(static_cast<size_t>(b) * dk + c) * N + i]) * k[(static_cast<size_t>(b) * dk + c) * M + j];
        s[j] = acc;
        m = std::max(m, acc);
      }
      for (int j = 0; j < M; ++j) l += s[j] = std::exp(s[j] - m);
      for (int c = 0; c < dv; ++c) {
        double acc = 0;
        for (int j = 0; j < M; ++j) acc += s[j] * v[(static_cast<size_t>(b) * dv + c) * M + j];
        o[(static_cast<size_t>(b) * dv + c) * N + i] = acc / l;
      }
      lse[static_cast<size_t>(b) * N + i] = m + std::log(l);
    }
}

int main_(int argc, char** argv) {
  Flags f(argc, argv);
  const int B = f.get("--B", kEmulated ? 1 : 4);
  const int N = f.get("--N", kEmulated ? 64 : 2048);  // the CPU reference: ~5 s
  const int M = f.get("--M", N);
  const int dk = f.get("--dk", kEmulated ? 8 : 32);
  const int dv = f.get("--dv", kEmulated ? 32 : 256);
  const Flags::Common c = f.common(5, 128, 20);  // 5 versions; default --block 128, --runs 20
  f.done();

  print_banner("attention forward", "B " + std::to_string(B) + ", N " + std::to_string(N) + ", M " +
                                        std::to_string(M) + ", dk " + std::to_string(dk) + ", dv " + std::to_string(dv));
  const std::vector<float> q = random_vector(static_cast<size_t>(B) * dk * N, 1);
  const std::vector<float> k = random_vector(static_cast<size_t>(B) * dk * M, 2);
  const std::vector<float> v = random_vector(static_cast<size_t>(B) * dv * M, 3);
  std::vector<double> o_ref, lse_ref;
  reference(q, k, v, B, N, M, dk, dv, o_ref, lse_ref);

  // The inputs are small next to the work (compute-bound): no rotation, they may stay in L2.
  Buf qd(q), kd(k), vd(v), o(static_cast<size_t>(B) * dv * N), lse(static_cast<size_t>(B) * N);
  const double map_bytes = 4.0 * B * N * M;
  std::unique_ptr<Buf> S;  // [B, N, M], version 1 only
  const bool map_fits = kEmulated || map_bytes <= 8e9;
  auto blocks_for = [&](int64_t n) { return static_cast<unsigned>((n + c.block - 1) / c.block); };

  using ember::cuda::AttentionVariant;
  auto production = [&](AttentionVariant var) {
    return [&, var](int) {
      ember::cuda::attention_forward_launch(var, qd.get(), kd.get(), vd.get(), o.get(), lse.get(), B, N, M, dk, dv,
                                            nullptr);
    };
  };
  std::vector<Version> versions = {
      {"unfused", "scores, softmax, weighted sum: three kernels, a [B, N, M] map",
       [&](int) {
         if (!S) S = std::make_unique<Buf>(static_cast<size_t>(B) * N * M);
         EMBER_LAUNCH(blocks_for(int64_t{B} * N * M), c.block, 0, nullptr, attn_unfused_scores)(qd.get(), kd.get(),
                                                                                           S->get(), B, N, M, dk);
         EMBER_CUDA_LAUNCH_CHECK();
         EMBER_LAUNCH(blocks_for(int64_t{B} * N), c.block, 0, nullptr, attn_unfused_softmax)(S->get(), lse.get(),
                                                                                        int64_t{B} * N, M);
         EMBER_CUDA_LAUNCH_CHECK();
         EMBER_LAUNCH(blocks_for(int64_t{B} * dv * N), c.block, 0, nullptr, attn_unfused_weighted)(S->get(), vd.get(),
                                                                                              o.get(), B, N, M, dv);
         EMBER_CUDA_LAUNCH_CHECK();
       },
       map_fits ? "" : "the [B, N, M] map would take more than 8 GB"},
      {"flash-scalar", "a thread per query, online softmax, plain loops",
       [&](int) {
         EMBER_LAUNCH(blocks_for(int64_t{B} * N), c.block, 0, nullptr, attn_flash_scalar)(
             qd.get(), kd.get(), vd.get(), o.get(), lse.get(), B, N, M, dk, dv);
         EMBER_CUDA_LAUNCH_CHECK();
       }},
      {"prod simt", "production: tiles in shared memory, fp32 FMA", production(AttentionVariant::Simt)},
      {"prod tf32", "production: TF32 tensor cores, 3xTF32 scores", production(AttentionVariant::Tf32)},
      {"prod 3xtf32", "production: every product in 3xTF32", production(AttentionVariant::Tf32x3)},
  };
  // fp32 accumulation over dk and M terms: ~1e-6 relative; one TF32 pass (10-bit mantissa) for
  // the P.V product: ~3e-4 (version 4).
  auto tol_o = [](int k) { return k == 3 ? 2e-3 : 2e-5; };
  const int status = run_ladder(
      versions, c.version,
      [&] {
        o.fill_nan();
        lse.fill_nan();
      },
      [&](int ver) {
        const bool a = check("o", o.download(), o_ref, tol_o(ver));
        const bool b = check("lse", lse.download(), lse_ref, 2e-6);
        return a && b;
      },
      Work{4.0 * (int64_t{B} * (dk * (N + M) + dv * (M + N) + N)), 2.0 * B * N * M * (dk + dv)}, c.runs);
  return status;
}

}  // namespace lab

int main(int argc, char** argv) { return lab::guarded_main(lab::main_, argc, argv); }
