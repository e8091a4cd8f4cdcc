// What the CPU this process runs on can execute, read once with cpuid (through GCC's
// __builtin_cpu_supports, which also checks that the OS saves the wide registers). Used to choose
// the BLAS library's kernels (kernels/cpu/blas.h) and to report which vector path ember's own
// kernels take (they are compiled as per-function clones, see EMBER_VECTOR_CLONES).
#pragma once
#include <string>

namespace ember::cpu {

struct CpuFeatures {
  bool sse3 = false, avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false, avx512cd = false;
  int family = 0, model = 0;  // cpuid's display family and model (model 207 = 0xCF)
  std::string vendor;         // "GenuineIntel", "AuthenticAMD", ...

  // The instruction-set level the CPU supports in full, as a short name: "AVX-512" (F, CD, BW,
  // DQ, VL: what Skylake-X and later server cores have), "AVX2" (with FMA), "AVX", "SSE".
  const char* isa_name() const;
};

// The features of the running CPU (computed once).
const CpuFeatures& cpu_features();

// The vector path that ember's own CPU kernels run (the clone the loader picked): "avx512",
// "avx2" or "baseline" (x86-64, SSE2), or "baseline" on other architectures.
const char* kernel_vector_path();

}  // namespace ember::cpu

// Per-function clones for ember's hot CPU loops: one portable binary that runs the AVX-512, AVX2
// or baseline version of the function, chosen once by the dynamic loader from the CPU (GCC's
// target_clones, an ifunc). Put it before a function definition whose loops the compiler should
// vectorise for the wider units.
// (Not under the sanitizers, whose instrumentation does not go with ifuncs.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define EMBER_HAVE_VECTOR_CLONES 1
#define EMBER_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EMBER_VECTOR_CLONES
#endif
