// Loading the BLAS library and choosing its kernels: see blas.h for why.
#include "kernels/cpu/blas.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#ifdef EMBER_BLAS_LIBRARY
#include <dlfcn.h>
#endif

#include "core/error.h"

namespace ember::cpu::blas {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

const char* isa_label(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "AVX-512";
    case Isa::Avx2: return "AVX2";
    case Isa::Avx: return "AVX";
    case Isa::Sse: return "SSE";
    default: return "unknown";
  }
}

}  // namespace

Isa isa_of_core(std::string_view openblas_core) {
  const std::string c = lower(openblas_core);
  for (const char* n : {"skylakex", "cooperlake", "sapphirerapids"})
    if (c == n) return Isa::Avx512;
  for (const char* n : {"haswell", "zen", "excavator"})
    if (c == n) return Isa::Avx2;
  for (const char* n : {"sandybridge", "bulldozer", "piledriver", "steamroller"})
    if (c == n) return Isa::Avx;
  for (const char* n : {"katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn",
                        "dunnington", "nehalem", "athlon", "opteron", "opteron(sse3)", "barcelona", "nano", "bobcat"})
    if (c == n) return Isa::Sse;
  return Isa::Unknown;
}

Isa isa_of_cpu(const CpuFeatures& f) {
  if (f.avx512f && f.avx512cd && f.avx512bw && f.avx512dq && f.avx512vl) return Isa::Avx512;
  if (f.avx2 && f.fma) return Isa::Avx2;
  if (f.avx) return Isa::Avx;
  return Isa::Sse;
}

const char* core_for(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "SkylakeX";
    case Isa::Avx2: return "Haswell";
    case Isa::Avx: return "Sandybridge";
    default: return "";
  }
}

Decision choose_core(const CpuFeatures& cpu, std::string_view chosen_core, const char* user_coretype) {
  if (user_coretype && *user_coretype)
    return {"", std::string("OPENBLAS_CORETYPE=") + user_coretype + " set by the user"};
  const Isa have = isa_of_cpu(cpu), chose = isa_of_core(chosen_core);
  if (chose == Isa::Unknown) return {"", "the library's own choice"};
  if (static_cast<int>(chose) >= static_cast<int>(have)) return {"", std::string("matching this CPU's ") + isa_label(have)};
  return {core_for(have), "the library chose " + std::string(chosen_core) + " (" + isa_label(chose) +
                              "), which does not use this CPU's " + isa_label(have)};
}

#ifdef EMBER_BLAS_LIBRARY

namespace {

// cblas_sgemm with its enums as ints (CblasRowMajor 101, CblasNoTrans 111, CblasTrans 112).
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*,
                         int);
using NameFn = char* (*)();

struct Library {
  void* handle = nullptr;
  SgemmFn sgemm = nullptr;
  std::string core, config;
  std::string error;
};

Library open_library() {
  Library lib;
  lib.handle = dlopen(EMBER_BLAS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (!lib.handle) {
    const char* e = dlerror();
    lib.error = e ? e : "dlopen failed";
    return lib;
  }
  lib.sgemm = reinterpret_cast<SgemmFn>(dlsym(lib.handle, "cblas_sgemm"));
  if (!lib.sgemm) {
    lib.error = "no cblas_sgemm in " EMBER_BLAS_LIBRARY;
    dlclose(lib.handle);
    lib.handle = nullptr;
    return lib;
  }
  if (auto name = reinterpret_cast<NameFn>(dlsym(lib.handle, "openblas_get_corename"))) lib.core = name();
  if (auto config = reinterpret_cast<NameFn>(dlsym(lib.handle, "openblas_get_config"))) {
    lib.config = config();  // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...": keep the name and version
    const auto second_space = lib.config.find(' ', lib.config.find(' ') + 1);
    if (second_space != std::string::npos) lib.config.resize(second_space);
  }
  return lib;
}

Library g_lib;
Info g_info;

void load() {
  const CpuFeatures& cpu = cpu_features();
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  g_lib = open_library();
  if (!g_lib.handle) {
    g_info.line = "BLAS: cannot load " EMBER_BLAS_LIBRARY " (" + g_lib.error + "); GEMM uses ember's built-in kernel";
    return;
  }
  const Decision d = choose_core(cpu, g_lib.core, user);
  std::string reason = d.reason;
  if (!d.coretype.empty()) {
    // Nothing has run in the library yet: unload it and let its constructor choose again, told
    // which kernels to use. The variable is removed afterwards so that child processes see the
    // environment they were given.
    dlclose(g_lib.handle);
    setenv("OPENBLAS_CORETYPE", d.coretype.c_str(), 1);
    const std::string before = g_lib.core;
    g_lib = open_library();
    unsetenv("OPENBLAS_CORETYPE");
    EMBER_CHECK(g_lib.handle, "BLAS: reloading " EMBER_BLAS_LIBRARY " with OPENBLAS_CORETYPE=" << d.coretype
                                                                                              << " failed: " << g_lib.error);
    if (lower(g_lib.core) == lower(d.coretype))
      reason = "chosen by ember: " + reason;
    else
      reason = "could not switch from " + before + " to " + d.coretype +
               " (the library stayed loaded); set OPENBLAS_CORETYPE=" + d.coretype + " before starting";
  }
  g_info.loaded = true;
  g_info.core = g_lib.core;
  g_info.line = "BLAS: " + (g_lib.config.empty() ? std::string(EMBER_BLAS_LIBRARY) : g_lib.config) + ", " +
                (g_lib.core.empty() ? std::string("its own") : g_lib.core) + " kernels (" + reason + "; CPU " +
                cpu.isa_name() + ", family " + std::to_string(cpu.family) + " model " + std::to_string(cpu.model) + ")";
}

}  // namespace

const Info& info() {
  static std::once_flag once;
  std::call_once(once, [] {
    load();
    std::fprintf(stderr, "ember: %s\n", g_info.line.c_str());
  });
  return g_info;
}

namespace {
// The decision is made at start-up (static initialisation of this file, which every program that
// can run a GEMM links), while the process still has one thread: setenv is not thread-safe.
[[maybe_unused]] const Info& g_at_startup = info();
}  // namespace

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
           int ldb, float beta, float* C, int ldc) {
  constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
  g_lib.sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, M, N, K, alpha, A, lda, B, ldb,
              beta, C, ldc);
}

#else  // built without a BLAS library

const Info& info() {
  static const Info i = [] {
    Info x;
    x.line = "BLAS: none at build time; GEMM uses ember's built-in kernel";
    std::fprintf(stderr, "ember: %s\n", x.line.c_str());
    return x;
  }();
  return i;
}

void sgemm(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int) {
  EMBER_FAIL("BLAS: ember was built without a BLAS library");
}

#endif

}  // namespace ember::cpu::blas
