// Shared-memory races under ThreadSanitizer (scripts/sanitize.sh --thread): in the TSan build the
// emulated threads of a block are OS threads, so a race between CUDA threads on shared memory is
// a data race TSan reports. Barriers order memory (a mutex), shuffles and mma do not (TSan is
// blind to their bookkeeping), as on the hardware.
//   ember_emu_tsan block_sum   cuda::block_sum, the shipped block reduction: no race
//   ember_emu_tsan broken      a copy of it without its second __syncthreads: TSan must report
//   ember_emu_tsan attention   the fused attention forward (SIMT and TF32 mma variants) on a
//                              small case, against a double-precision reference: no race
// Exit status 0 when the results are right; TSan makes it non-zero on a report.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda/attention_kernels.cuh"
#include "kernels/cuda/common.cuh"

namespace {

using ember::emu::set_kernel_resources;

__global__ void block_sum_kernel(const float* x, float* out) {
  EMBER_SHARED(float, scratch, [32]);
  const float s = ember::cuda::block_sum(x[blockIdx.x * blockDim.x + threadIdx.x], scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// cuda::block_reduce with the barrier between the warp leaders' writes and the reads removed.
__device__ float broken_block_sum(float x, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  x = ember::cuda::group_sum(x);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  // __syncthreads();  <- removed: warp 0 may read scratch[] before the other leaders wrote it
  x = lane < nwarps ? scratch[lane] : 0.0f;
  return ember::cuda::group_sum(x);
}
__global__ void broken_block_sum_kernel(const float* x, float* out) {
  EMBER_SHARED(float, scratch, [32]);
  const float s = broken_block_sum(x[blockIdx.x * blockDim.x + threadIdx.x], scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}

int run_block_sum(bool broken) {
  const int blocks = 2, threads = 128;
  std::vector<float> x(blocks * threads), out(blocks, NAN);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7);
  if (broken) {
    set_kernel_resources(reinterpret_cast<const void*>(broken_block_sum_kernel), 16, 128);
    EMBER_LAUNCH(blocks, threads, 0, nullptr, broken_block_sum_kernel)(x.data(), out.data());
  } else {
    set_kernel_resources(reinterpret_cast<const void*>(block_sum_kernel), 16, 128);
    EMBER_LAUNCH(blocks, threads, 0, nullptr, block_sum_kernel)(x.data(), out.data());
  }
  EMBER_CUDA_LAUNCH_CHECK();
  int bad = 0;
  for (int b = 0; b < blocks; ++b) {
    double ref = 0;
    for (int t = 0; t < threads; ++t) ref += x[b * threads + t];
    if (out[b] != ref) std::printf("block %d: sum %g, expected %g\n", b, out[b], ref), ++bad;
  }
  return bad;
}

template <ember::cuda::Prec SP, ember::cuda::Prec BP>
double attention_error(int B, int dk, int N, int M, int dv) {
  using namespace ember::cuda;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> U(-1.0f, 1.0f);
  std::vector<float> q(B * dk * N), k(B * dk * M), v(B * dv * M), o(B * dv * N, NAN), lse(B * N, NAN);
  for (auto* t : {&q, &k, &v})
    for (float& e : *t) e = U(rng);
  const Shapes s{N, M, dk, dv, round8(dk), round8(dv)};
  const dim3 grid(blocks(N, kMaxWarps * kWarpRows), blocks(dv, kDvChunk), B);
  EMBER_LAUNCH(grid, kMaxWarps * 32, fwd_smem(s), nullptr, attn_fwd<SP, BP>)(q.data(), k.data(), v.data(), o.data(),
                                                                            lse.data(), s,
                                                                            AttentionEpilogue{});
  EMBER_CUDA_LAUNCH_CHECK();
  double num = 0, den = 0;
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < N; ++i) {
      std::vector<double> p(M);
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j < M; ++j) {
        double t = 0;
        for (int c = 0; c < dk; ++c) t += double(q[(b * dk + c) * N + i]) * k[(b * dk + c) * M + j];
        p[j] = t, mx = std::max(mx, t);
      }
      for (double& t : p) sum += (t = std::exp(t - mx));
      for (int c = 0; c < dv; ++c) {
        double r = 0;
        for (int j = 0; j < M; ++j) r += p[j] / sum * v[(b * dv + c) * M + j];
        const double e = o[(b * dv + c) * N + i] - r;
        num += e * e, den += r * r;
      }
    }
  return std::sqrt(num / den);
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  try {
    if (!std::strcmp(mode, "block_sum")) return run_block_sum(false) ? 1 : 0;
    if (!std::strcmp(mode, "broken")) {
      run_block_sum(true);  // the result may even be right: the race is what must be reported
      return 0;
    }
    if (!std::strcmp(mode, "attention")) {
      using ember::cuda::Prec;
      // Partial tiles, dk not a multiple of 8; fp32 and TF32-product tolerances as in tests/cuda.
      const double e1 = attention_error<Prec::kSimt, Prec::kSimt>(1, 5, 20, 37, 9);
      const double e2 = attention_error<Prec::kTf32x3, Prec::kTf32>(1, 5, 20, 37, 9);
      std::printf("attention: simt %.3g, tf32 %.3g\n", e1, e2);
      return e1 < 1e-5 && e2 < 3e-3 ? 0 : 1;
    }
  } catch (std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: ember_emu_tsan block_sum|broken|attention\n");
  return 2;
}
