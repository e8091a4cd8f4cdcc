// cpuid, read once. Feature bits come from GCC's __builtin_cpu_supports (which also checks, with
// xgetbv, that the OS saves the AVX and AVX-512 registers); family and model from cpuid leaf 1,
// for messages only.
#include "kernels/cpu/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <cstring>
#endif

namespace ember::cpu {

const char* CpuFeatures::isa_name() const {
  if (avx512f && avx512bw && avx512dq && avx512vl && avx512cd) return "AVX-512";
  if (avx2 && fma) return "AVX2";
  if (avx) return "AVX";
  return "SSE";
}

namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  __builtin_cpu_init();
  f.sse3 = __builtin_cpu_supports("sse3");
  f.avx = __builtin_cpu_supports("avx");
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512cd = __builtin_cpu_supports("avx512cd");
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0, &a, &b, &c, &d)) {
    char v[13] = {};
    std::memcpy(v, &b, 4), std::memcpy(v + 4, &d, 4), std::memcpy(v + 8, &c, 4);
    f.vendor = v;
  }
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    const int base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    f.family = base_family == 0xf ? base_family + static_cast<int>((a >> 20) & 0xff) : base_family;
    f.model = (base_family == 0x6 || base_family == 0xf) ? base_model + static_cast<int>(((a >> 16) & 0xf) << 4)
                                                         : base_model;
  }
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const char* kernel_vector_path() {
#ifdef EMBER_HAVE_VECTOR_CLONES
  // The same test the target_clones resolver makes, in the same order.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "avx512 (x86-64-v4 clones)";
  if (__builtin_cpu_supports("x86-64-v3")) return "avx2 (x86-64-v3 clones)";
#endif
  return "baseline (x86-64, SSE2)";
}

}  // namespace ember::cpu
