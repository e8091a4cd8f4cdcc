// Benchmark of the attention core (kernels/attention.inc) for the SAGAN block, B = 64,
// C in {64, 128, 256}, N in {1024, 4096}, both block variants (article: M = N keys, dv = C;
// official SAGAN: M = N/4 pooled keys, dv = C/2), dk = C/8.
// Variants (each checked against the CPU reference on a small case before anything is timed):
//   0a unfused fp32  cuBLAS strided-batched GEMM S = Q^T K -> cuda::softmax_forward -> GEMM O = V P^T;
//                    backward: 4 GEMMs + cuda::softmax_backward, P kept from the forward (O(B N M))
//   0b unfused tf32  the same with cuBLAS TF32 tensor-op math
//   1  fused simt    the production kernels (kernels/cuda/attention.cuh), fp32 FMA
//   2  fused tf32    the production default with allow_tf32: 3xTF32 scores, TF32 products
//   3  fused 3xtf32  every product in 3xTF32 (fp32-class accuracy)
// Timing: CUDA events after warm-up, median of --reps runs; inputs are 33-270 MB at N = 4096 (past
// the 50 MB L2) but only 8-67 MB at N = 1024, so those figures may be partly L2-resident.
// TFLOP/s use the useful work of the unfused method for every variant: forward 2 B N M (dk + dv),
// backward 2 B N M (2 dk + 2 dv); the fused backward's recomputation of S and dP is not counted.
// Memory: the allocator's peak bytes in use during one forward + backward beyond the inputs.
// Without a GPU it says CUDA is skipped and times the CPU reference on a small case.
//   usage: bench_attention [--reps R] [--n N] [--c C]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/rng.h"
#include "kernels/cpu/attention_reference.h"
#include "kernels/kernels.h"
#ifdef EMBER_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/device_memory.h"
#include "kernels/cuda/attention.cuh"
#include "core/cuda/cuda_context.cuh"
#endif

using namespace ember;

namespace {

struct Shape4 {
  int64_t B, dk, N, M, dv;
  const char* block;  // "article" or "official"
};

double fwd_flops(const Shape4& s) { return 2.0 * s.B * s.N * s.M * (s.dk + s.dv); }
double bwd_flops(const Shape4& s) { return 2.0 * s.B * s.N * s.M * (2 * s.dk + 2 * s.dv); }

Tensor uniform(const Shape& shape, uint64_t seed, Device d) {
  Generator gen(seed);
  return rand_uniform(shape, gen, d, -1.f, 1.f);
}

double rel_err(const Tensor& a, const Tensor& ref) {
  std::vector<float> x = a.to_vector(), r = ref.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) return INFINITY;
    num += (double(x[i]) - r[i]) * (double(x[i]) - r[i]);
    den += double(r[i]) * r[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

void time_cpu() {
  const Shape4 s{1, 8, 1024, 1024, 64, "article"};
  Tensor q = uniform(Shape{s.B, s.dk, s.N}, 1, Device::CPU), k = uniform(Shape{s.B, s.dk, s.M}, 2, Device::CPU);
  Tensor v = uniform(Shape{s.B, s.dv, s.M}, 3, Device::CPU), g = uniform(Shape{s.B, s.dv, s.N}, 4, Device::CPU);
  Tensor o = Tensor::empty(Shape{s.B, s.dv, s.N}), lse = Tensor::empty(Shape{s.B, s.N});
  Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()), dv = Tensor::empty(v.shape());
  auto ms = [](const std::function<void()>& f) {
    std::vector<double> t;
    for (int r = 0; r < 3; ++r) {
      auto a = std::chrono::steady_clock::now();
      f();
      t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[1];
  };
  const double tf = ms([&] { cpu::attention_forward(q, k, v, o, lse); });
  const double tb = ms([&] { cpu::attention_backward(q, k, v, o, lse, g, dq, dk, dv); });
  std::printf("CPU float kernels, B=%lld dk=%lld N=%lld M=%lld dv=%lld: forward %.1f ms (%.2f GFLOP/s), backward %.1f ms "
              "(%.2f GFLOP/s, counting 2BNM(2dk+2dv))\n",
              (long long)s.B, (long long)s.dk, (long long)s.N, (long long)s.M, (long long)s.dv, tf,
              fwd_flops(s) / tf / 1e6, tb, bwd_flops(s) / tb / 1e6);
}

#ifdef EMBER_WITH_CUDA

#define BENCH_CUBLAS(expr)                                                                        \
  do {                                                                                            \
    cublasStatus_t st_ = (expr);                                                                  \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                                           \
      std::fprintf(stderr, "cuBLAS error %d in %s (%s:%d)\n", int(st_), #expr, __FILE__, __LINE__); \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

struct Inputs {
  Tensor q, k, v, g;  // on the GPU
};

// The unfused path, in the framework's layouts (row-major [B, d, positions]); cuBLAS is column-major,
// so a row-major [r x c] buffer is read as a column-major [c x r] one.
struct Unfused {
  cublasHandle_t h = nullptr;
  explicit Unfused(bool tf32) {
    BENCH_CUBLAS(cublasCreate(&h));
    BENCH_CUBLAS(cublasSetStream(h, cuda_rt::stream()));
    BENCH_CUBLAS(cublasSetMathMode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  }
  ~Unfused() { cublasDestroy(h); }
  Unfused(const Unfused&) = delete;
  Unfused& operator=(const Unfused&) = delete;

  // C = op(A) op(B), column-major, batched with strides.
  void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int kk, const float* A, int lda, long long sa,
            const float* Bm, int ldb, long long sb, float* C, int ldc, long long sc, int batch) {
    const float one = 1.f, zero = 0.f;
    BENCH_CUBLAS(cublasSgemmStridedBatched(h, ta, tb, m, n, kk, &one, A, lda, sa, Bm, ldb, sb, &zero, C, ldc, sc, batch));
  }
  // P [B, N, M] = softmax_rows(Q^T K); o [B, dv, N] = V P^T.
  void forward(const Shape4& s, const Inputs& in, Tensor& S, Tensor& P, Tensor& o) {
    const int B = int(s.B), dk = int(s.dk), N = int(s.N), M = int(s.M), dv = int(s.dv);
    // S^T (M x N, col-major) = K^T (the k buffer as M x dk) * Q (the q buffer as N x dk, transposed)
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, M, N, dk, in.k.data(), M, (long long)dk * M, in.q.data(), N, (long long)dk * N,
         S.data(), M, (long long)N * M, B);
    Tensor S2 = S.reshape({s.B * s.N, s.M}), P2 = P.reshape({s.B * s.N, s.M});
    cuda::softmax_forward(S2, P2);
    // O^T (N x dv) = P (the P buffer as M x N, transposed) * V^T (the v buffer as M x dv)
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, N, dv, M, P.data(), M, (long long)N * M, in.v.data(), M, (long long)dv * M,
         o.data(), N, (long long)dv * N, B);
  }
  void backward(const Shape4& s, const Inputs& in, const Tensor& P, Tensor& dP, Tensor& dS, Tensor& dq, Tensor& dk,
                Tensor& dv) {
    const int B = int(s.B), dkc = int(s.dk), N = int(s.N), M = int(s.M), dvc = int(s.dv);
    const long long nm = (long long)N * M;
    // dV^T (M x dv) = P^T (P buffer as M x N) * dO^T (dO buffer as N x dv)
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, M, dvc, N, P.data(), M, nm, in.g.data(), N, (long long)dvc * N, dv.data(), M,
         (long long)dvc * M, B);
    // dP^T (M x N) = V^T (v buffer as M x dv) * dO (dO buffer as N x dv, transposed)
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, M, N, dvc, in.v.data(), M, (long long)dvc * M, in.g.data(), N, (long long)dvc * N,
         dP.data(), M, nm, B);
    Tensor P2 = P.reshape({s.B * s.N, s.M}), dP2 = dP.reshape({s.B * s.N, s.M}), dS2 = dS.reshape({s.B * s.N, s.M});
    cuda::softmax_backward(P2, dP2, dS2);
    // dQ^T (N x dk) = dS (dS buffer as M x N, transposed) * K^T (k buffer as M x dk)
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, N, dkc, M, dS.data(), M, nm, in.k.data(), M, (long long)dkc * M, dq.data(), N,
         (long long)dkc * N, B);
    // dK^T (M x dk) = dS^T (dS buffer as M x N) * Q^T (q buffer as N x dk)
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, M, dkc, N, dS.data(), M, nm, in.q.data(), N, (long long)dkc * N, dk.data(), M,
         (long long)dkc * M, B);
  }
};

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

double median_ms(const std::function<void()>& f, int reps) {
  cudaStream_t st = cuda_rt::stream();
  for (int w = 0; w < 2; ++w) f();
  cudaEvent_t a, b;
  check_cuda(cudaEventCreate(&a), "cudaEventCreate");
  check_cuda(cudaEventCreate(&b), "cudaEventCreate");
  std::vector<float> t;
  for (int r = 0; r < reps; ++r) {
    check_cuda(cudaEventRecord(a, st), "cudaEventRecord");
    f();
    check_cuda(cudaEventRecord(b, st), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(b), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
    t.push_back(ms);
  }
  check_cuda(cudaGetLastError(), "timed work");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// One variant: runs forward and backward with fresh outputs.
struct Variant {
  std::string name;
  bool fused;
  cuda::AttentionVariant fused_variant;
  bool tf32;  // for the unfused path
};

struct Outputs {
  Tensor o, lse, dq, dk, dv, S, P, dP, dS;
};

Outputs alloc_outputs(const Shape4& s, bool fused) {
  Outputs r;
  const Device d = Device::CUDA;
  r.o = Tensor::full(Shape{s.B, s.dv, s.N}, NAN, d);
  r.lse = Tensor::full(Shape{s.B, s.N}, NAN, d);
  r.dq = Tensor::full(Shape{s.B, s.dk, s.N}, NAN, d);
  r.dk = Tensor::full(Shape{s.B, s.dk, s.M}, NAN, d);
  r.dv = Tensor::full(Shape{s.B, s.dv, s.M}, NAN, d);
  if (!fused)
    for (Tensor* t : {&r.S, &r.P, &r.dP, &r.dS}) *t = Tensor::empty(Shape{s.B, s.N, s.M}, d);
  return r;
}

void run_forward(const Variant& v, Unfused& uf, const Shape4& s, const Inputs& in, Outputs& out) {
  if (v.fused)
    cuda::attention_forward_variant(v.fused_variant, in.q, in.k, in.v, out.o, out.lse);
  else
    uf.forward(s, in, out.S, out.P, out.o);
}
void run_backward(const Variant& v, Unfused& uf, const Shape4& s, const Inputs& in, Outputs& out) {
  if (v.fused)
    cuda::attention_backward_variant(v.fused_variant, in.q, in.k, in.v, out.o, out.lse, in.g, out.dq, out.dk, out.dv);
  else
    uf.backward(s, in, out.P, out.dP, out.dS, out.dq, out.dk, out.dv);
}

Inputs make_inputs(const Shape4& s, uint64_t seed) {
  const Device d = Device::CUDA;
  return Inputs{uniform(Shape{s.B, s.dk, s.N}, seed, d), uniform(Shape{s.B, s.dk, s.M}, seed + 1, d),
                uniform(Shape{s.B, s.dv, s.M}, seed + 2, d), uniform(Shape{s.B, s.dv, s.N}, seed + 3, d)};
}

// Each variant against the CPU reference on a small, awkward case; false if any is off.
bool check_variants(const std::vector<Variant>& vars, Unfused& fp32, Unfused& tf32) {
  const Shape4 s{2, 8, 300, 75, 64, "check"};
  Inputs in = make_inputs(s, 77);
  Tensor q = in.q.to(Device::CPU), k = in.k.to(Device::CPU), v = in.v.to(Device::CPU), g = in.g.to(Device::CPU);
  Tensor ro = Tensor::empty(Shape{s.B, s.dv, s.N}), rl = Tensor::empty(Shape{s.B, s.N});
  cpu::reference::attention_forward(q, k, v, ro, rl);
  Tensor rq = Tensor::empty(q.shape()), rk = Tensor::empty(k.shape()), rv = Tensor::empty(v.shape());
  cpu::reference::attention_backward(q, k, v, ro, rl, g, rq, rk, rv);
  bool ok = true;
  std::printf("check against the CPU reference (B=2 dk=8 N=300 M=75 dv=64), ||out-ref||/||ref||:\n");
  for (const Variant& var : vars) {
    Unfused& uf = var.tf32 ? tf32 : fp32;
    Outputs out = alloc_outputs(s, var.fused);
    run_forward(var, uf, s, in, out);
    run_backward(var, uf, s, in, out);
    check_cuda(cudaDeviceSynchronize(), "check run");
    const double eo = rel_err(out.o, ro), eq = rel_err(out.dq, rq), ek = rel_err(out.dk, rk), ev = rel_err(out.dv, rv);
    const bool low = var.tf32 || (var.fused && var.fused_variant == cuda::AttentionVariant::Tf32);
    const double tol = low ? 3e-3 : 1e-4;  // TF32 inputs: ~3e-4 expected; fp32-class: ~1e-6
    const bool good = eo < tol && eq < tol && ek < tol && ev < tol;
    ok = ok && good;
    std::printf("  %-14s o %.1e  dq %.1e  dk %.1e  dv %.1e  %s\n", var.name.c_str(), eo, eq, ek, ev,
                good ? "ok" : "FAILED");
  }
  return ok;
}

int bench_cuda(int reps, int64_t only_n, int64_t only_c) {
  Unfused fp32(false), tf32(true);
  const std::vector<Variant> vars = {
      {"0a unfused fp32", false, cuda::AttentionVariant::Simt, false},
      {"0b unfused tf32", false, cuda::AttentionVariant::Simt, true},
      {"1 fused simt", true, cuda::AttentionVariant::Simt, false},
      {"2 fused tf32", true, cuda::AttentionVariant::Tf32, false},
      {"3 fused 3xtf32", true, cuda::AttentionVariant::Tf32x3, false},
  };
  if (!check_variants(vars, fp32, tf32)) {
    std::printf("a variant disagrees with the CPU reference: not timing\n");
    return 1;
  }
  size_t free_b = 0, total_b = 0;
  check_cuda(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  std::printf("\ndevice memory: %.1f GB free of %.1f GB; production default variant: %s\n", free_b / 1e9,
              total_b / 1e9, cuda::attention_variant_name(cuda::attention_default_variant()));
  std::printf("%-8s %-4s %-5s %-5s %-4s %-15s %9s %8s %9s %8s %8s %8s %10s\n", "block", "C", "N", "M", "dv", "variant",
              "fwd ms", "TFLOP/s", "bwd ms", "TFLOP/s", "fwd x", "bwd x", "extra MB");
  for (int64_t N : {1024, 4096})
    for (int64_t C : {64, 128, 256})
      for (int blk = 0; blk < 2; ++blk) {
        if ((only_n && N != only_n) || (only_c && C != only_c)) continue;
        const Shape4 s = blk == 0 ? Shape4{64, C / 8, N, N, C, "article"} : Shape4{64, C / 8, N, N / 4, C / 2, "official"};
        Inputs in = make_inputs(s, 1000 + N + C + blk);
        double base_f[2] = {0, 0}, base_b[2] = {0, 0};  // unfused fp32, tf32
        for (const Variant& var : vars) {
          Unfused& uf = var.tf32 ? tf32 : fp32;
          cuda_rt::synchronize();
          const size_t before = cuda_rt::allocator_stats().in_use;
          cuda_rt::reset_peak();
          double tf = 0, tb = 0, extra_mb = 0;
          {
            Outputs out = alloc_outputs(s, var.fused);
            run_forward(var, uf, s, in, out);
            run_backward(var, uf, s, in, out);
            cuda_rt::synchronize();
            extra_mb = (cuda_rt::allocator_stats().peak_in_use - before) / 1e6;
            tf = median_ms([&] { run_forward(var, uf, s, in, out); }, reps);
            tb = median_ms([&] { run_backward(var, uf, s, in, out); }, reps);
          }
          if (!var.fused) {
            base_f[var.tf32] = tf;
            base_b[var.tf32] = tb;
          }
          // Speed-up against the unfused path of the same precision class.
          const int cls = var.tf32 || (var.fused && var.fused_variant == cuda::AttentionVariant::Tf32) ? 1 : 0;
          char line[256];
          std::snprintf(line, sizeof line, "%-8s %-4lld %-5lld %-5lld %-4lld %-15s %9.3f %8.1f %9.3f %8.1f %8.2f %8.2f %10.0f",
                        s.block, (long long)C, (long long)N, (long long)s.M, (long long)s.dv, var.name.c_str(), tf,
                        fwd_flops(s) / tf / 1e9, tb, bwd_flops(s) / tb / 1e9, base_f[cls] / tf, base_b[cls] / tb,
                        extra_mb);
          std::printf("%s\n", line);
          std::fflush(stdout);
        }
      }
  std::printf("\nspeed-ups (x) are against the unfused path of the same precision class (fp32: 0a, tf32: 0b);\n"
              "extra MB: peak device memory of one forward + backward beyond the inputs.\n");
  return 0;
}

#endif  // EMBER_WITH_CUDA

}  // namespace

int main(int argc, char** argv) {
  int reps = 10;
  int64_t only_n = 0, only_c = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--reps")) reps = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--n")) only_n = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--c")) only_c = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--reps R] [--n N] [--c C]\n", argv[0]);
      return 2;
    }
  }
  time_cpu();
  if (!cuda_available()) {
    std::printf("CUDA skipped: %s\n", cuda_unavailable_reason().c_str());
    return 0;
  }
#ifdef EMBER_WITH_CUDA
  return bench_cuda(reps, only_n, only_c);
#else
  return 0;
#endif
}
