// The emulator's own promises (docs/emulation.md): shuffle and vote semantics, mma.sync and
// cvt.rna.tf32, NaN-filled shared memory, and that each class of bug it is there to catch is
// caught: divergent barriers, partial warps in a collective, launches the GPU would refuse.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "core/cuda/check.cuh"

namespace {

using ember::emu::set_kernel_resources;

// ---- kernels under test (host C++ via emu.h, like every kernel file) ----------------------------
__global__ void shuffles(int* out) {  // out[5][32]: xor, down, up (width 8), idx, xor (width 4)
  const int lane = threadIdx.x;
  out[0 * 32 + lane] = __shfl_xor_sync(0xffffffffu, lane, 5);
  out[1 * 32 + lane] = __shfl_down_sync(0xffffffffu, lane, 3);
  out[2 * 32 + lane] = __shfl_up_sync(0xffffffffu, lane, 2, 8);
  out[3 * 32 + lane] = __shfl_sync(0xffffffffu, lane, 7 + lane % 3, 16);
  out[4 * 32 + lane] = __shfl_xor_sync(0xffffffffu, lane, 6, 4);
}

__global__ void votes(unsigned* out) {
  const int lane = threadIdx.x % 32;
  const unsigned b = __ballot_sync(0xffffffffu, lane % 3 == 0);
  const int any = __any_sync(0xffffffffu, lane == 31), all = __all_sync(0xffffffffu, lane < 31);
  if (threadIdx.x == 0) out[0] = b, out[1] = any, out[2] = all;
}

__global__ void read_unwritten_shared(float* out) {
  EMBER_SHARED(float, cache, [64]);
  EMBER_DYNAMIC_SHARED(float, dyn);
  out[threadIdx.x] = cache[threadIdx.x];
  out[64 + threadIdx.x] = dyn[threadIdx.x];
}

__global__ void barrier_after_early_return(float* out) {
  if (threadIdx.x >= 40) return;  // a barrier below is then reached by only 40 of 64 threads
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void barriers_at_two_sites(float* out) {
  if (threadIdx.x % 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

__global__ void shuffle_with_half_warp(float* out) {
  float v = threadIdx.x;
  if (threadIdx.x < 16) v = __shfl_xor_sync(0x0000ffffu, v, 1);
  out[threadIdx.x] = v;
}

__global__ void noop(float*) {}

__global__ void mma_product(const float* a, const float* b, float* c) {  // a [16][8], b [8][8], c [16][8]
  const int lane = threadIdx.x, g = lane / 4, q = lane % 4;
  const uint32_t af[4] = {ember::emu::to_tf32(a[g * 8 + q]), ember::emu::to_tf32(a[(g + 8) * 8 + q]),
                          ember::emu::to_tf32(a[g * 8 + q + 4]), ember::emu::to_tf32(a[(g + 8) * 8 + q + 4])};
  const uint32_t bf[2] = {ember::emu::to_tf32(b[q * 8 + g]), ember::emu::to_tf32(b[(q + 4) * 8 + g])};
  float acc[4] = {0, 0, 0, 0};
  ember::emu::mma_tf32(acc, af, bf);
  for (int e = 0; e < 4; ++e) c[(g + 8 * (e >> 1)) * 8 + 2 * q + (e & 1)] = acc[e];
}

template <class... P>
void launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, float* out) {
  EMBER_LAUNCH(grid, block, smem, nullptr, k)(out);
  EMBER_CUDA_LAUNCH_CHECK();
}

}  // namespace

TEST_CASE("emulator: shuffles follow the PTX ISA's lane arithmetic, widths included", "[emulator]") {
  set_kernel_resources(reinterpret_cast<const void*>(shuffles), 16, 0);
  std::vector<int> out(5 * 32, -1);
  EMBER_LAUNCH(1, 32, 0, nullptr, shuffles)(out.data());
  for (int l = 0; l < 32; ++l) {
    CHECK(out[l] == (l ^ 5));
    CHECK(out[32 + l] == (l + 3 < 32 ? l + 3 : l));                // down: past the end keeps its own
    CHECK(out[64 + l] == (l % 8 >= 2 ? l - 2 : l));                 // up within segments of 8
    CHECK(out[96 + l] == (l / 16) * 16 + (7 + l % 3) % 16);         // idx within segments of 16
    CHECK(out[128 + l] == ((l % 4 ^ 6) < 4 ? (l / 4) * 4 + (l % 4 ^ 6) : l));  // xor: outside the segment keeps its own
  }
}

TEST_CASE("emulator: ballot, any and all", "[emulator]") {
  set_kernel_resources(reinterpret_cast<const void*>(votes), 16, 0);
  std::vector<unsigned> out(3, 7);
  EMBER_LAUNCH(1, 64, 0, nullptr, votes)(out.data());
  CHECK(out[0] == 0x49249249u);
  CHECK(out[1] == 1u);
  CHECK(out[2] == 0u);
}

TEST_CASE("emulator: shared memory nobody wrote reads as NaN", "[emulator]") {
  set_kernel_resources(reinterpret_cast<const void*>(read_unwritten_shared), 16, 256);
  std::vector<float> out(128, 0.0f);
  launch(read_unwritten_shared, 1, 64, 64 * sizeof(float), out.data());
  for (float v : out) CHECK(std::isnan(v));
}

TEST_CASE("emulator: a barrier that not every thread reaches fails the launch", "[emulator]") {
  std::vector<float> out(64);
  set_kernel_resources(reinterpret_cast<const void*>(barrier_after_early_return), 16, 0);
  CHECK_THROWS_WITH(launch(barrier_after_early_return, 1, 64, 0, out.data()),
                    Catch::Contains("divergent __syncthreads") && Catch::Contains("exited without reaching it"));
  set_kernel_resources(reinterpret_cast<const void*>(barriers_at_two_sites), 16, 0);
  CHECK_THROWS_WITH(launch(barriers_at_two_sites, 1, 64, 0, out.data()), Catch::Contains("divergent __syncthreads"));
}

TEST_CASE("emulator: a shuffle must have every lane of the warp", "[emulator]") {
  std::vector<float> out(32);
  set_kernel_resources(reinterpret_cast<const void*>(shuffle_with_half_warp), 16, 0);
  CHECK_THROWS_WITH(launch(shuffle_with_half_warp, 1, 32, 0, out.data()), Catch::Contains("not every lane"));
}

TEST_CASE("emulator: launches the GPU would refuse are refused with the runtime's error", "[emulator]") {
  const void* k = reinterpret_cast<const void*>(noop);
  auto refused = [](dim3 grid, dim3 block, size_t smem) {
    EMBER_LAUNCH(grid, block, smem, nullptr, noop)(nullptr);
    return cudaGetLastError();
  };
  // Registers: 92 x 1024 threads need 98,304 of 65,536 (defect 1 of issue 10); 64 x 1024 fit.
  set_kernel_resources(k, 92, 0);
  CHECK(refused(1, 1024, 0) == cudaErrorLaunchOutOfResources);
  CHECK(refused(1, 512, 0) == cudaSuccess);
  set_kernel_resources(k, 64, 0);
  CHECK(refused(1, 1024, 0) == cudaSuccess);
  // __launch_bounds__(256): 512 threads are refused whatever the registers.
  set_kernel_resources(k, 16, 0, 256);
  CHECK(refused(1, 512, 0) == cudaErrorLaunchOutOfResources);
  CHECK(refused(1, 256, 0) == cudaSuccess);
  // Block and grid shape.
  set_kernel_resources(k, 16, 0);
  CHECK(refused(1, 1025, 0) == cudaErrorInvalidConfiguration);
  CHECK(refused(1, dim3(1, 1, 65), 0) == cudaErrorInvalidConfiguration);
  CHECK(refused(dim3(1, 65536), 32, 0) == cudaErrorInvalidConfiguration);
  // Shared memory: 48 KB in all without the attribute; the opt-in limit with it.
  set_kernel_resources(k, 16, 1024);
  CHECK(refused(1, 32, 48 * 1024 - 1024) == cudaSuccess);
  CHECK(refused(1, 32, 48 * 1024) == cudaErrorInvalidConfiguration);
  REQUIRE(cudaFuncSetAttribute(noop, cudaFuncAttributeMaxDynamicSharedMemorySize, 100 * 1024) == cudaSuccess);
  CHECK(refused(1, 32, 100 * 1024) == cudaSuccess);
  CHECK(refused(1, 32, 100 * 1024 + 4) == cudaErrorInvalidConfiguration);
  CHECK(cudaFuncSetAttribute(noop, cudaFuncAttributeMaxDynamicSharedMemorySize, 240 * 1024) == cudaErrorInvalidValue);
  (void)cudaGetLastError();
}

TEST_CASE("emulator: a failed launch's check names its label and its source file", "[emulator]") {
  set_kernel_resources(reinterpret_cast<const void*>(noop), 16, 0);
  EMBER_LAUNCH(1, 1025, 0, nullptr, noop)(nullptr);  // too many threads: refused
  CHECK_THROWS_WITH(EMBER_CUDA_LAUNCH_CHECK("noop probe"),
                    Catch::Contains(": launch noop probe [") && Catch::Contains("test_emulator.cpp"));
  EMBER_LAUNCH(1, 1025, 0, nullptr, noop)(nullptr);
  CHECK_THROWS_WITH(EMBER_CUDA_LAUNCH_CHECK(), Catch::Contains(": launch [") && Catch::Contains("test_emulator.cpp"));
  EMBER_LAUNCH(1, 32, 0, nullptr, noop)(nullptr);
  CHECK_NOTHROW(EMBER_CUDA_LAUNCH_CHECK("noop probe"));
}

TEST_CASE("emulator: mma.sync m16n8k8 TF32 is the product of the TF32-rounded inputs", "[emulator]") {
  set_kernel_resources(reinterpret_cast<const void*>(mma_product), 32, 0);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> U(-1.0f, 1.0f);
  std::vector<float> a(16 * 8), b(8 * 8), c(16 * 8, NAN);
  for (float& x : a) x = U(rng);
  for (float& x : b) x = U(rng);
  EMBER_LAUNCH(1, 32, 0, nullptr, mma_product)(a.data(), b.data(), c.data());
  auto tf32 = [](float x) { return __uint_as_float(ember::emu::to_tf32(x)); };
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double r = 0;
      for (int k = 0; k < 8; ++k) r += double(tf32(a[i * 8 + k])) * tf32(b[k * 8 + j]);
      CHECK(std::abs(c[i * 8 + j] - r) <= 8 * 0x1p-24 * 8);  // eight fp32 additions of |terms| <= 1
    }
  // cvt.rna: ties away from zero, 10 mantissa bits; NaN and infinity pass through.
  CHECK(ember::emu::to_tf32(1.0f + 0x1p-11f) == __float_as_uint(1.0f + 0x1p-10f));
  CHECK(ember::emu::to_tf32(-(1.0f + 0x1p-11f)) == __float_as_uint(-(1.0f + 0x1p-10f)));
  CHECK(ember::emu::to_tf32(1.0f + 0x1p-12f) == __float_as_uint(1.0f));
  CHECK(std::isinf(__uint_as_float(ember::emu::to_tf32(INFINITY))));
  CHECK(std::isnan(__uint_as_float(ember::emu::to_tf32(NAN))));
}
