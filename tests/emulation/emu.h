// The CUDA built-ins as host C++: what lets kernels/cuda/*.cu and core/cuda/*.cu compile with g++
// and run on the CPU (docs/emulation.md). Force-included (-include) into every source of the
// emulated library and tests; the shadow headers in tests/emulation/include stand in for the
// CUDA runtime, cuBLAS and cuDNN headers.
//
// Device-side model. A launch runs its blocks one after another; the threads of a block are
// emulated threads (fibers on one OS thread in the plain and ASan builds, OS threads in the TSan
// build). threadIdx / blockIdx / blockDim / gridDim read the running emulated thread's state.
// Synchronisation is only what the hardware gives: __syncthreads (all threads of the block, at
// the same call site), __syncwarp and the warp collectives (shuffles, votes, mma) which exchange
// values among the lanes of the mask. A divergent barrier, a collective missing a lane of its
// mask, or a deadlock fails the launch with a description instead of hanging.
#pragma once
#ifndef EMBER_EMULATION
#error "tests/emulation/emu.h is for the emulated build only (EMBER_EMULATION)"
#endif
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

// ---- vector types ------------------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

// ---- qualifiers --------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __noinline__

namespace ember::emu {

struct Block;
// The state of one emulated thread.
struct Thread {
  uint3 tid;
  unsigned linear = 0;  // tid.x + bdim.x * (tid.y + bdim.y * tid.z)
  Block* block = nullptr;
  unsigned seq = 0;  // warp collectives this thread has joined
};
extern thread_local Thread* t_self;
const uint3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();

// Barriers and collectives (emu.cpp). `site` names the call for the divergence checks.
void syncthreads(const char* file, int line);
void syncwarp(unsigned mask);
enum class Shfl { kIdx, kUp, kDown, kXor };
uint64_t shfl(unsigned mask, uint64_t bits, Shfl mode, int arg, int width);
unsigned vote_ballot(unsigned mask, bool pred);
[[noreturn]] void trap(const char* file, int line);

// Shared memory of the running block: the bytes of one `EMBER_SHARED` declaration (allocated on
// first use, NaN-filled, exactly sizeof(T)) and the launch's dynamic bytes.
void* static_shared(const void* tag, size_t bytes);
void* dynamic_shared();

// Kernel launches run so far in this process (refused ones not counted): what the tests use to
// count the launches of an op (e.g. the attention block's, tests/cuda/test_attention_block.cpp).
uint64_t launches();

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 and cvt.rna.tf32.f32 (PTX ISA).
uint32_t to_tf32(float x);
void mma_tf32(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);

template <class T>
T shfl_as(unsigned mask, T v, Shfl mode, int arg, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = shfl(mask, bits, mode, arg, width);
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

}  // namespace ember::emu

#define threadIdx (static_cast<const uint3&>(::ember::emu::t_self->tid))
#define blockIdx (::ember::emu::block_idx())
#define blockDim (::ember::emu::block_dim())
#define gridDim (::ember::emu::grid_dim())
constexpr int warpSize = 32;

#define __syncthreads() ::ember::emu::syncthreads(__FILE__, __LINE__)
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::ember::emu::syncwarp(mask); }
#define __trap() ::ember::emu::trap(__FILE__, __LINE__)

template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return ::ember::emu::shfl_as(mask, v, ::ember::emu::Shfl::kIdx, src, width);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) {
  return ::ember::emu::shfl_as(mask, v, ::ember::emu::Shfl::kUp, static_cast<int>(d), width);
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) {
  return ::ember::emu::shfl_as(mask, v, ::ember::emu::Shfl::kDown, static_cast<int>(d), width);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return ::ember::emu::shfl_as(mask, v, ::ember::emu::Shfl::kXor, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int pred) { return ::ember::emu::vote_ballot(mask, pred != 0); }
inline int __any_sync(unsigned mask, int pred) { return ::ember::emu::vote_ballot(mask, pred != 0) != 0; }
inline int __all_sync(unsigned mask, int pred) {
  return ::ember::emu::vote_ballot(mask, pred != 0) == ::ember::emu::vote_ballot(mask, true);
}

// ---- shared memory -----------------------------------------------------------------------------
// EMBER_SHARED(float, scratch, [32]) is `__shared__ float scratch[32]` (kernels/cuda/common.cuh);
// here a reference to the running block's copy. The tag (one per declaration and instantiation)
// tells the declarations apart.
#define EMBER_SHARED(type, name, dims)                                                    \
  static const char ember_emu_tag_##name = 0;                                             \
  using ember_emu_type_##name = type dims;                                                \
  ember_emu_type_##name& name = *static_cast<ember_emu_type_##name*>(                     \
      ::ember::emu::static_shared(&ember_emu_tag_##name, sizeof(ember_emu_type_##name)))
#define EMBER_DYNAMIC_SHARED(type, name) type* const name = static_cast<type*>(::ember::emu::dynamic_shared())

// ---- memory: loads, fences, atomics ------------------------------------------------------------
template <class T>
T __ldg(const T* p) { return *p; }
template <class T>
T __ldcg(const T* p) { return *p; }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// Atomics are real atomics: emulated threads may be OS threads (TSan build).
template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
T atomicMax(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
  return old;
}
template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
T atomicCAS(T* p, T expected, T desired) {
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return expected;
}
template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline float atomicAdd(float* p, float v) {
  uint32_t* u = reinterpret_cast<uint32_t*>(p);
  uint32_t old = __atomic_load_n(u, __ATOMIC_RELAXED), next;
  float f;
  do {
    std::memcpy(&f, &old, 4);
    f += v;
    std::memcpy(&next, &f, 4);
  } while (!__atomic_compare_exchange_n(u, &old, next, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  std::memcpy(&f, &old, 4);
  return f;
}

// ---- arithmetic intrinsics ---------------------------------------------------------------------
// The emulated build compiles without FMA contraction (-ffp-contract=off): a*b+c rounds twice,
// as nvcc's __fmul_rn / __fadd_rn promise; nvcc may contract plain a*b+c, the host does not.
inline float __uint_as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t __float_as_uint(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
// The classification functions device code calls unqualified, as CUDA declares them.
using std::isfinite;
using std::isinf;
using std::isnan;
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz(static_cast<unsigned>(v)); }

// CUDA's min/max take mixed integer types (common type) in device code.
template <class A, class B, std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>, int> = 0>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return std::min<C>(static_cast<C>(a), static_cast<C>(b));
}
template <class A, class B, std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>, int> = 0>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return std::max<C>(static_cast<C>(a), static_cast<C>(b));
}
