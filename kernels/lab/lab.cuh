// The kernel lab's shared helpers (kernels/lab/, docs/kernels.md "The kernel lab"): flags, the
// check against the CPU reference, timing, and what lets one .cu file build two ways:
//
//   nvcc:     the CUDA program. Every version is checked, then timed with CUDA events (median of
//             --runs launches, inputs rotated through more than the L2 holds), against the measured
//             device-to-device copy bandwidth (benchmarks/bench_util.h, shared with the benchmarks).
//   emulated: the same file compiled as host C++ against the CPU emulation of CUDA
//             (tests/emulation, docs/emulation.md; CMake target lab_<family>_emu). Every version runs
//             on the CPU and is checked; nothing is timed.
//
// Each lab program is one translation unit: it includes this header once, then the production
// kernel file it runs (kernels/cuda/<family>.cu: the shipped code, not a copy). EMBER_KERNELS_ONLY
// leaves out of those files everything that needs the rest of ember (tensors, the context, cuDNN),
// and the two small sources the launch checks need (the error type and the formatting of a failed
// CUDA call) are compiled in below, so the one nvcc line at the top of each program builds it.
#pragma once
#ifndef EMBER_KERNELS_ONLY
#define EMBER_KERNELS_ONLY 1
#endif

#include <cuda_runtime.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/cuda/check.cuh"  // EMBER_CUDA_CHECK, EMBER_LAUNCH, EMBER_SHARED, EMBER_DYNAMIC_SHARED
#include "core/cuda/check.cu"   // its out-of-line half (one function)
#include "core/error.cpp"       // ember::Error and EMBER_CHECK's thrower

#ifndef EMBER_EMULATION
#define EMBER_WITH_CUDA 1  // bench_util.h's device half: event timing, rotation, copy bandwidth
#endif
#include "benchmarks/bench_util.h"

namespace lab {

#ifdef EMBER_EMULATION
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

// ---- flags ------------------------------------------------------------------------------------
// "--name value" pairs. Every flag a program reads is declared with its default; an unknown flag,
// a missing value or a value that is not a number in range is an error (exit 2) naming the flag.
// A program reads its shape flags with get(), then the flags every lab program has with common(),
// then calls done():
//
//   Flags f(argc, argv);
//   const int rows = f.get("--rows", kEmulated ? 6 : 16384);
//   const Flags::Common c = f.common(7, 256, 100);  // 7 versions; default --block 256, --runs 100
//   f.done();
class Flags {
 public:
  Flags(int argc, char** argv) {
    const std::string path = argc > 0 ? argv[0] : "lab";
    program_ = path.substr(path.find_last_of('/') + 1);
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        help_ = true;
        continue;
      }
      if (a.rfind("--", 0) != 0 || i + 1 >= argc) usage_error("expected --flag value, got '" + a + "'");
      given_[a] = argv[++i];
    }
  }
  // An integer flag in [lo, INT_MAX]; `def` when not given.
  int get(const std::string& name, int def, int lo = 1) {
    declared_.insert(name);
    help_text_ += "  " + name + " (default " + std::to_string(def) + ")\n";
    auto it = given_.find(name);
    if (it == given_.end()) return def;
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(it->second.c_str(), &end, 10);
    if (end == it->second.c_str() || *end != '\0')
      usage_error(name + " takes an integer, got '" + it->second + "'");
    if (v < lo || v > INT_MAX || errno == ERANGE)
      usage_error(name + " must be in " + std::to_string(lo) + ".." + std::to_string(INT_MAX) + ", got " + it->second);
    return static_cast<int>(v);
  }

  // The flags of every lab program: --version K|all (version 0 = all of 1..versions), --block (the
  // threads per block of the lab's own kernels: whole warps, at most 1024) and --runs (timed
  // launches per version).
  struct Common {
    int version, block, runs;
  };
  Common common(int versions, int default_block, int default_runs) {
    Common c;
    c.version = version(versions);
    c.block = get("--block", default_block, 32);
    if (c.block % 32 != 0 || c.block > 1024)
      usage_error("--block must be a multiple of 32 up to 1024, got " + std::to_string(c.block));
    c.runs = get("--runs", default_runs, 0);
    return c;
  }

  // After every get(): refuses flags nobody read, prints the help when asked.
  void done() {
    if (help_) {
      std::printf("usage: %s [--flag value]...\n%s", program_.c_str(), help_text_.c_str());
      std::exit(0);
    }
    for (auto& kv : given_)
      if (!declared_.count(kv.first)) usage_error("unknown flag " + kv.first + " (--help lists them)");
  }

  [[noreturn]] static void usage_error(const std::string& what) {
    std::fprintf(stderr, "error: %s\n", what.c_str());
    std::exit(2);
  }

 private:
  int version(int count) {
    declared_.insert("--version");
    help_text_ += "  --version K|all (default all; 1.." + std::to_string(count) + ")\n";
    auto it = given_.find("--version");
    if (it == given_.end() || it->second == "all") return 0;
    char* end = nullptr;
    const long v = std::strtol(it->second.c_str(), &end, 10);
    if (end == it->second.c_str() || *end != '\0' || v < 1 || v > count)
      usage_error("--version takes 1.." + std::to_string(count) + " or all, got '" + it->second + "'");
    return static_cast<int>(v);
  }

  std::string program_;
  std::map<std::string, std::string> given_;
  std::set<std::string> declared_;
  std::string help_text_;
  bool help_ = false;
};

// ---- host and device arrays -------------------------------------------------------------------
inline std::vector<float> random_vector(size_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

// A device array of floats (RAII, move-only); cudaMalloc + cudaMemcpy, every call checked.
class Buf {
 public:
  explicit Buf(size_t n) : n_(n) { EMBER_CUDA_CHECK(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(float))); }
  explicit Buf(const std::vector<float>& h) : Buf(h.size()) {
    EMBER_CUDA_CHECK(cudaMemcpy(p_, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~Buf() {
    if (p_) cudaFree(p_);
  }
  Buf(Buf&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf& operator=(Buf&&) = delete;

  float* get() const { return p_; }
  // Every byte 0xff: a NaN, so an element a kernel forgot to write cannot pass the check.
  void fill_nan() const { EMBER_CUDA_CHECK(cudaMemset(p_, 0xff, n_ * sizeof(float))); }
  std::vector<float> download() const {
    std::vector<float> h(n_);
    EMBER_CUDA_CHECK(cudaDeviceSynchronize());
    EMBER_CUDA_CHECK(cudaMemcpy(h.data(), p_, n_ * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  float* p_ = nullptr;
  size_t n_ = 0;
};

// `sets` copies of one input, for timing with the L2 flushed: launch i reads copy i % sets.
struct Rotated {
  std::vector<Buf> sets;
  Rotated(const std::vector<float>& h, int count) {
    for (int i = 0; i < count; ++i) sets.emplace_back(h);
  }
  const float* operator[](int i) const { return sets[static_cast<size_t>(i) % sets.size()].get(); }
};

// ---- the check --------------------------------------------------------------------------------
// Compares out with the double-precision reference: max |out - ref| and ||out - ref|| / ||ref||
// (a NaN or Inf anywhere fails). On failure prints the first mismatching
// elements side by side (an element mismatches when |out - ref| > tol * max(1, |ref|)).
inline bool check(const char* what, const std::vector<float>& out, const std::vector<double>& ref, double tol) {
  double max_abs = 0, num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = out[i] - ref[i];
    max_abs = std::isfinite(out[i]) ? std::max(max_abs, std::fabs(d)) : INFINITY;
    num += d * d;
    den += ref[i] * ref[i];
  }
  const double rel = !std::isfinite(max_abs) ? INFINITY : den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const bool ok = rel <= tol;
  std::printf("    %-6s max |err| %.2e  rel err %.2e  (tol %.0e)  %s\n", what, max_abs, rel, tol, ok ? "ok" : "FAILED");
  if (!ok) {
    int shown = 0;
    std::printf("      first mismatches: index, got, want\n");
    for (size_t i = 0; i < ref.size() && shown < 8; ++i)
      if (!(std::fabs(out[i] - ref[i]) <= tol * std::max(1.0, std::fabs(ref[i])))) {
        std::printf("      [%zu] %14.7g %14.7g\n", i, out[i], ref[i]);
        ++shown;
      }
  }
  return ok;
}

// ---- the ladder -------------------------------------------------------------------------------
// One version of a kernel: a line saying what it changes, and the call (i counts launches, for
// rotating inputs). `skip` says why this version cannot take the shape ("" when it can); `bytes`,
// when >= 0, replaces the program's byte count for this version (one that also writes more).
struct Version {
  std::string name, what;
  std::function<void(int i)> run;
  std::string skip;
  double bytes = -1;
};

// What one program measures per launch: the bytes it must move and the FLOPs it must do (either
// may be 0); the table prints GB/s against the measured copy bandwidth, and GFLOP/s.
struct Work {
  double bytes = 0, flops = 0;
};

inline void print_banner(const char* family, const std::string& shape) {
  std::printf("kernel lab: %s, %s\n", family, shape.c_str());
#ifdef EMBER_EMULATION
  std::printf("running on the CPU emulation of CUDA (tests/emulation): correctness only, nothing is timed\n");
#else
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    throw ember::Error("no CUDA device here: the emulated build of this program (CMake target lab_<family>_emu, "
                       "docs/kernels.md \"The kernel lab\") runs every version on the CPU");
  bench::print_device();
#endif
}

// Runs the selected versions (0 = all): `prepare` fills the outputs with NaN, `verify(k)` downloads
// and checks the outputs of version k (0-based). Then, on a GPU, times every version that passed.
// Returns the exit status: 1 when any version failed its check.
inline int run_ladder(std::vector<Version>& versions, int selected, const std::function<void()>& prepare,
                      const std::function<bool(int)>& verify, Work work, int runs) {
  int failed = 0;
  std::vector<int> passed;
  for (size_t k = 0; k < versions.size(); ++k) {
    if (selected && static_cast<int>(k) + 1 != selected) continue;
    Version& v = versions[k];
    std::printf("\nversion %zu: %s -- %s\n", k + 1, v.name.c_str(), v.what.c_str());
    if (!v.skip.empty()) {
      std::printf("    skipped: %s\n", v.skip.c_str());
      continue;
    }
    bool ok = false;
    try {
      prepare();
      v.run(0);
      ok = verify(static_cast<int>(k));
    } catch (const std::exception& e) {
      std::printf("    error: %s\n", e.what());
    }
    if (ok) passed.push_back(static_cast<int>(k));
    else ++failed;
  }
#ifndef EMBER_EMULATION
  if (runs > 0 && !passed.empty()) {
    const double copy = bench::copy_bandwidth_gbs(runs);
    std::printf("\n%-3s %-28s %12s %10s %8s %10s\n", "", "version", "median_us", "GB/s", "%copy", "GFLOP/s");
    for (int k : passed) {
      const double us = bench::gpu_median_us(versions[k].run, runs);
      const double bytes = versions[k].bytes >= 0 ? versions[k].bytes : work.bytes;
      const double gbs = bytes / (us * 1e3);
      char pct[16] = "-", gfl[16] = "-";
      if (bytes > 0) std::snprintf(pct, sizeof pct, "%.1f", 100.0 * gbs / copy);
      if (work.flops > 0) std::snprintf(gfl, sizeof gfl, "%.1f", work.flops / (us * 1e3));
      std::printf("%-3d %-28s %12.2f %10.1f %8s %10s\n", k + 1, versions[k].name.c_str(), us, gbs, pct, gfl);
    }
    std::printf("(copy bandwidth measured: %.1f GB/s read + written; median of %d launches)\n", copy, runs);
  }
#else
  (void)work;
  (void)runs;
#endif
  std::printf("\n%d version(s) failed the check\n", failed);
  return failed ? 1 : 0;
}

// How many input copies to rotate through when timing (1 under emulation: nothing is timed).
inline int rotation(double bytes_per_set) {
#ifdef EMBER_EMULATION
  (void)bytes_per_set;
  return 1;
#else
  return bench::rotation_sets(bytes_per_set);
#endif
}

// main() of every lab program: an error (a failed CUDA call, a launch the emulator refuses) is
// printed and exits with status 1.
inline int guarded_main(int (*body)(int, char**), int argc, char** argv) {
#ifdef EMBER_LAB_RESOURCES  // emulated: the build's resource table plus the lab kernels' lines
  setenv("EMBER_EMU_RESOURCES", EMBER_LAB_RESOURCES, 0);  // an explicit EMBER_EMU_RESOURCES wins
#endif
  try {
    return body(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

}  // namespace lab
