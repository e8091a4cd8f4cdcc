// The BLAS library behind the CPU GEMM, loaded at run time, with the right kernels.
//
// Why at run time: OpenBLAS chooses its kernels once, in its constructor, from a table of CPU
// models; a CPU newer than the library (Debian's 0.3.21 on family 6 model 207) falls back to the
// SSE3 "Prescott" kernels, several times slower than the AVX-512 ones the CPU can run. The only
// way to choose is the variable OPENBLAS_CORETYPE, read by that constructor. So ember dlopen()s
// the library at start-up (static initialisation of blas.cpp), asks which kernels it chose (openblas_get_corename), compares
// them with what cpuid says the CPU runs, and when the library chose weaker kernels, unloads it
// and loads it again with OPENBLAS_CORETYPE set (kernels the CPU has, never more). A user's own
// OPENBLAS_CORETYPE is always respected. One line on stderr says which kernels are in use.
// Without a loadable library, the GEMM uses ember's built-in blocked kernel.
#pragma once
#include <string>
#include <string_view>

#include "kernels/cpu/cpu_features.h"

namespace ember::cpu::blas {

// OpenBLAS's x86-64 kernel families ranked by the widest vector instructions they use.
enum class Isa { Unknown = -1, Sse = 0, Avx = 1, Avx2 = 2, Avx512 = 3 };

// The level of an OpenBLAS core name ("Prescott" -> Sse, "SkylakeX" -> Avx512; case-insensitive);
// Unknown for a name this table does not know (then ember leaves the library's choice alone).
Isa isa_of_core(std::string_view openblas_core);

// The level the CPU supports in full (AVX-512 needs F, CD, BW, DQ and VL, as OpenBLAS's SkylakeX
// kernels do; AVX2 needs FMA too).
Isa isa_of_cpu(const CpuFeatures& f);

// The OpenBLAS core to ask for at a level: "SkylakeX", "Haswell", "Sandybridge"; "" for Sse/Unknown.
const char* core_for(Isa isa);

struct Decision {
  std::string coretype;  // the OPENBLAS_CORETYPE to load the library with; empty: keep its choice
  std::string reason;    // one clause for the start-up line
};

// The decision, as a pure function of the CPU's features, the core the library chose by itself,
// and the user's OPENBLAS_CORETYPE (nullptr or "" when unset).
Decision choose_core(const CpuFeatures& cpu, std::string_view chosen_core, const char* user_coretype);

struct Info {
  bool loaded = false;  // false: the built-in GEMM runs
  std::string core;     // the kernels in use ("SkylakeX"), or "" when the library does not say
  std::string line;     // the start-up line, e.g. "BLAS: OpenBLAS 0.3.21, SkylakeX kernels (...)"
};

// Loads the library on the first call (thread-safe; made at start-up) and prints Info::line once
// to stderr.
const Info& info();

// C[M,N] = alpha op(A) op(B) + beta C through the loaded library, row-major (cblas_sgemm's
// contract). Requires info().loaded.
void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
           int ldb, float beta, float* C, int ldc);

}  // namespace ember::cpu::blas
