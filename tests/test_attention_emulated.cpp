// The device code of the fused attention kernels (kernels/cuda/attention_kernels.cuh), run on the CPU
// under an emulation of CUDA: one OS thread per CUDA thread, condition-variable barriers for
// __syncthreads and __syncwarp, shuffles through a per-warp buffer, and mma.sync.m16n8k8 (TF32) rebuilt
// from the PTX ISA's fragment tables. Every variant is compared with the CPU reference. This checks
// the tiling, masking, online softmax and fragment bookkeeping on every CI run, where no GPU exists;
// it proves nothing about timing, memory ordering on real hardware or the instruction itself, which
// tests/cuda/test_attention.cpp checks on a GPU. Unwritten shared memory reads as NaN.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/attention_reference.h"
#include "kernels/kernels.h"
#include "tests/harness.h"

// ---- the emulated CUDA built-ins (this translation unit only) ----------------------------------
struct dim3 { unsigned x = 1, y = 1, z = 1; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
struct Barrier {
  std::mutex m; std::condition_variable cv; int count, waiting = 0; long gen = 0;
  explicit Barrier(int n) : count(n) {}
  void wait() { std::unique_lock<std::mutex> lk(m); long g = gen; if (++waiting == count) { waiting = 0; ++gen; cv.notify_all(); } else cv.wait(lk, [&] { return gen != g; }); }
};
Barrier* block_bar; Barrier* warp_bar[32];
void __syncthreads() { block_bar->wait(); }
void __syncwarp() { warp_bar[threadIdx.x / 32]->wait(); }
float shfl_buf[32][32];
float __shfl_xor_sync(unsigned, float x, int off) {
  int w = threadIdx.x / 32, l = threadIdx.x % 32;
  shfl_buf[w][l] = x; __syncwarp(); float r = shfl_buf[w][l ^ off]; __syncwarp(); return r;
}
#define __global__
#define __device__
#define __host__
#define __shared__
#define __forceinline__ inline
#define __launch_bounds__(...)
template <class T> T __ldg(const T* p) { return *p; }
inline float __uint_as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
struct float2 { float x, y; };
inline float2 make_float2(float a, float b) { return {a, b}; }
using std::min;
#define EMBER_ATTN_EMULATED_MMA
namespace ember::cuda { namespace {
float smem[1 << 16];  // 256 KB: more than any GPU gives one block
uint32_t to_tf32(float x) { uint32_t u; std::memcpy(&u, &x, 4); return (u + 0x1000u) & 0xffffe000u; }
uint32_t st_a[32][32][4], st_b[32][32][2];
void mma_tf32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  int w = threadIdx.x / 32, l = threadIdx.x % 32;
  for (int e = 0; e < 4; ++e) st_a[w][l][e] = a[e];
  for (int e = 0; e < 2; ++e) st_b[w][l][e] = b[e];
  __syncwarp();
  float A[16][8], B[8][8];
  for (int L = 0; L < 32; ++L) {
    int g = L / 4, q = L % 4;
    auto f = [](uint32_t u) { return __uint_as_float(u & 0xffffe000u); };  // hardware reads 19 bits
    A[g][q] = f(st_a[w][L][0]); A[g + 8][q] = f(st_a[w][L][1]); A[g][q + 4] = f(st_a[w][L][2]); A[g + 8][q + 4] = f(st_a[w][L][3]);
    B[q][g] = f(st_b[w][L][0]); B[q + 4][g] = f(st_b[w][L][1]);
  }
  int g = l / 4, q = l % 4;
  for (int e = 0; e < 4; ++e) {
    int row = g + 8 * (e >> 1), col = 2 * q + (e & 1);
    float acc = c[e];
    for (int k = 0; k < 8; ++k) acc += A[row][k] * B[k][col];
    c[e] = acc;
  }
  __syncwarp();
}
}}
#include "kernels/cuda/attention_kernels.cuh"

using namespace ember;
using ember::cuda::Prec;
using ember::cuda::Shapes;

namespace {

// Runs kernel(args...) for every block of the grid, one block at a time.
template <class F, class... Args>
void launch(dim3 grid, unsigned threads, size_t smem_bytes, F kernel, Args... args) {
  REQUIRE(smem_bytes <= sizeof(ember::cuda::smem));
  gridDim = grid;
  blockDim = dim3(threads);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        std::fill(ember::cuda::smem, ember::cuda::smem + smem_bytes / 4, NAN);
        Barrier bb(threads);
        block_bar = &bb;
        std::vector<std::unique_ptr<Barrier>> wb;
        for (unsigned w = 0; w < threads / 32; ++w) {
          wb.push_back(std::make_unique<Barrier>(32));
          warp_bar[w] = wb.back().get();
        }
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < threads; ++t)
          ts.emplace_back([=] {
            threadIdx = dim3(t, 0, 0);  // y and z are 0 in a 1-D block (dim3 defaults them to 1)
            blockIdx = dim3(x, y, z);
            kernel(args...);
          });
        for (auto& t : ts) t.join();
      }
}

struct Case {
  int B, dk, N, M, dv, warps;  // warps: of the dk and dq kernels (the host picks 4, 2 or 1)
};

template <Prec SP, Prec BP>
void check_variant(const Case& c, double tol_fwd, double tol_bwd) {
  using namespace ember::cuda;
  INFO("B=" << c.B << " dk=" << c.dk << " N=" << c.N << " M=" << c.M << " dv=" << c.dv << " warps=" << c.warps);
  Tensor q = test::random_tensor(Shape{c.B, c.dk, c.N}, 11), k = test::random_tensor(Shape{c.B, c.dk, c.M}, 12);
  Tensor v = test::random_tensor(Shape{c.B, c.dv, c.M}, 13), g = test::random_tensor(Shape{c.B, c.dv, c.N}, 14);
  Tensor o = Tensor::full(Shape{c.B, c.dv, c.N}, NAN), lse = Tensor::full(Shape{c.B, c.N}, NAN);
  Tensor ro = Tensor::empty(o.shape()), rl = Tensor::empty(lse.shape());
  cpu::reference::attention_forward(q, k, v, ro, rl);
  Shapes s{c.N, c.M, c.dk, c.dv, round8(c.dk), round8(c.dv)};
  const float *pq = q.data(), *pk = k.data(), *pv = v.data(), *pg = g.data();
  launch(dim3(blocks(c.N, kMaxWarps * kWarpRows), blocks(c.dv, kDvChunk), c.B), kMaxWarps * 32, fwd_smem(s),
         attn_fwd<SP, BP>, pq, pk, pv, o.data(), lse.data(), s);
  CHECK(test::rel_err(o, ro) < tol_fwd);
  CHECK(test::rel_err(lse, rl) < 1e-6);

  // Backward from the emulated forward's o and lse, against the CPU backward from the same.
  Tensor rq = Tensor::empty(q.shape()), rk = Tensor::empty(k.shape()), rv = Tensor::empty(v.shape());
  cpu::reference::attention_backward(q, k, v, o, lse, g, rq, rk, rv);
  Tensor D = Tensor::full(Shape{c.B, c.N}, NAN);
  Tensor dq = Tensor::full(q.shape(), NAN), dk = Tensor::full(k.shape(), NAN), dv = Tensor::full(v.shape(), NAN);
  const float *po = o.data(), *pl = lse.data(), *pD = D.data();
  launch(dim3(blocks(c.B * c.N, 256)), 256, 0, attn_rowdot, po, pg, D.data(), c.B, c.N, c.dv);
  launch(dim3(blocks(c.M, kMaxWarps * kWarpRows), blocks(c.dv, kDvChunk), c.B), kMaxWarps * 32, dv_smem(s),
         attn_bwd_dv<SP, BP>, pq, pk, pl, pg, dv.data(), s);
  const size_t sm = dkdq_smem(s, c.warps);
  launch(dim3(blocks(c.M, c.warps * kWarpRows), 1, c.B), c.warps * 32, sm, attn_bwd_dk<SP, BP>, pq, pk, pv, pl, pD, pg,
         dk.data(), s);
  launch(dim3(blocks(c.N, c.warps * kWarpRows), 1, c.B), c.warps * 32, sm, attn_bwd_dq<SP, BP>, pq, pk, pv, pl, pD, pg,
         dq.data(), s);
  CHECK(test::rel_err(dv, rv) < tol_bwd);
  CHECK(test::rel_err(dk, rk) < tol_bwd);
  CHECK(test::rel_err(dq, rq) < tol_bwd);
}

}  // namespace

TEST_CASE("attention: CUDA kernel code, emulated on the CPU, matches the reference", "[attention][emulated]") {
  // Partial tiles everywhere; two value chunks; dk not a multiple of 8; every warp count of dk/dq.
  for (Case c : {Case{2, 3, 37, 45, 20, 4}, Case{1, 12, 70, 33, 140, 2}, Case{1, 33, 20, 40, 9, 1}}) {
    // fp32 FMA and 3xTF32: fp32-class; TF32 products: ~3e-4 expected (a double model of TF32
    // rounding gives 2.5e-4 for o and 4.5e-4 for the gradients at these sizes).
    check_variant<Prec::kSimt, Prec::kSimt>(c, 2e-6, 1e-5);
    check_variant<Prec::kTf32x3, Prec::kTf32x3>(c, 2e-6, 1e-5);
    check_variant<Prec::kTf32x3, Prec::kTf32>(c, 2e-3, 3e-3);
  }
}

TEST_CASE("attention: emulated attn_probs rows match the reference", "[attention][emulated]") {
  using namespace ember::cuda;
  const int B = 2, dk = 5, N = 9, M = 300;
  Tensor q = test::random_tensor(Shape{B, dk, N}, 21), k = test::random_tensor(Shape{B, dk, M}, 22);
  Tensor idx = Tensor::from_vector({0.f, 8.f, 3.f}, Shape{3});
  Tensor p = Tensor::full(Shape{B, 3, M}, NAN), rp = Tensor::empty(Shape{B, 3, M});
  cpu::attention_probs(q, k, idx, rp);
  const float *pq = q.data(), *pk = k.data(), *pi = idx.data();
  launch(dim3(3, B), 256, sizeof(float) * (dk + 32), attn_probs, pq, pk, pi, p.data(), N, M, dk, 3);
  CHECK(test::rel_err(p, rp) < 1e-6);
}
