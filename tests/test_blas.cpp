// The choice of the BLAS library's kernels (kernels/cpu/blas.h) on given CPUs, and that the
// library in use agrees with the running CPU.
#include <catch2/catch.hpp>

#include "kernels/cpu/blas.h"

using namespace ember::cpu;
using blas::Isa;

namespace {

CpuFeatures sse_cpu() {
  CpuFeatures f;
  f.sse3 = true;
  return f;
}
CpuFeatures avx_cpu() {
  CpuFeatures f = sse_cpu();
  f.avx = true;
  return f;
}
CpuFeatures avx2_cpu() {
  CpuFeatures f = avx_cpu();
  f.avx2 = f.fma = true;
  return f;
}
CpuFeatures avx512_cpu() {  // family 6 model 207 (Emerald Rapids), which OpenBLAS 0.3.21 does not know
  CpuFeatures f = avx2_cpu();
  f.avx512f = f.avx512bw = f.avx512dq = f.avx512vl = f.avx512cd = true;
  f.family = 6, f.model = 207;
  return f;
}

}  // namespace

TEST_CASE("blas: OpenBLAS core names rank by instruction set", "[blas]") {
  CHECK(blas::isa_of_core("Prescott") == Isa::Sse);
  CHECK(blas::isa_of_core("NEHALEM") == Isa::Sse);
  CHECK(blas::isa_of_core("Sandybridge") == Isa::Avx);
  CHECK(blas::isa_of_core("Haswell") == Isa::Avx2);
  CHECK(blas::isa_of_core("Zen") == Isa::Avx2);
  CHECK(blas::isa_of_core("SkylakeX") == Isa::Avx512);
  CHECK(blas::isa_of_core("Cooperlake") == Isa::Avx512);
  CHECK(blas::isa_of_core("NeoverseN1") == Isa::Unknown);
  CHECK(blas::isa_of_core("") == Isa::Unknown);
}

TEST_CASE("blas: a CPU's level needs every feature of it", "[blas]") {
  CHECK(blas::isa_of_cpu(avx512_cpu()) == Isa::Avx512);
  CpuFeatures no_bw = avx512_cpu();
  no_bw.avx512bw = false;  // Xeon Phi-like: AVX-512F without BW; SkylakeX kernels would fault
  CHECK(blas::isa_of_cpu(no_bw) == Isa::Avx2);
  CpuFeatures no_fma = avx2_cpu();
  no_fma.fma = false;
  CHECK(blas::isa_of_cpu(no_fma) == Isa::Avx);
  CHECK(blas::isa_of_cpu(sse_cpu()) == Isa::Sse);
}

TEST_CASE("blas: the library's kernels are replaced only when weaker than the CPU", "[blas]") {
  // The case: an AVX-512 CPU the library does not know, which gets Prescott.
  blas::Decision d = blas::choose_core(avx512_cpu(), "Prescott", nullptr);
  CHECK(d.coretype == "SkylakeX");
  CHECK(d.reason.find("Prescott") != std::string::npos);
  // An AVX2 CPU given SSE or AVX kernels gets Haswell's; an AVX CPU gets Sandybridge's.
  CHECK(blas::choose_core(avx2_cpu(), "Nehalem", nullptr).coretype == "Haswell");
  CHECK(blas::choose_core(avx2_cpu(), "Sandybridge", "").coretype == "Haswell");
  CHECK(blas::choose_core(avx_cpu(), "Core2", nullptr).coretype == "Sandybridge");
  // Never kernels the CPU lacks, and a right (or better-named) choice is kept.
  CHECK(blas::choose_core(avx2_cpu(), "SkylakeX", nullptr).coretype.empty());
  CHECK(blas::choose_core(avx512_cpu(), "SkylakeX", nullptr).coretype.empty());
  CHECK(blas::choose_core(avx512_cpu(), "Cooperlake", nullptr).coretype.empty());
  CHECK(blas::choose_core(avx2_cpu(), "Zen", nullptr).coretype.empty());
  CHECK(blas::choose_core(sse_cpu(), "Prescott", nullptr).coretype.empty());
  // A core this table does not know is left alone.
  CHECK(blas::choose_core(avx512_cpu(), "SomeFutureCore", nullptr).coretype.empty());
  // The user's own setting wins, even when it is weaker.
  d = blas::choose_core(avx512_cpu(), "Prescott", "Haswell");
  CHECK(d.coretype.empty());
  CHECK(d.reason.find("OPENBLAS_CORETYPE=Haswell") != std::string::npos);
}

TEST_CASE("blas: the loaded library runs kernels this CPU supports, and not weaker ones", "[blas]") {
  const blas::Info& i = blas::info();
  INFO(i.line);
  if (!i.loaded || i.core.empty()) SUCCEED("no OpenBLAS loaded: nothing to check");
  else {
    const Isa used = blas::isa_of_core(i.core), cpu = blas::isa_of_cpu(cpu_features());
    if (used != Isa::Unknown) {
      CHECK(static_cast<int>(used) <= static_cast<int>(cpu));
      const char* user = std::getenv("OPENBLAS_CORETYPE");
      if (!user || !*user) CHECK(used == cpu);
    }
  }
}
