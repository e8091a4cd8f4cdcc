// The loops of ember's memory-bound CPU kernels (elementwise, pooling, bias, batch norm, optimisers)
// run through these helpers, so that they are
//   - vectorised for the CPU's widest units: the loop body is compiled inside a per-function clone
//     (EMBER_VECTOR_CLONES: AVX-512, AVX2 or baseline, chosen once at load time). The rest of the
//     library is built for baseline x86-64, whose 16-byte SSE2 vectors left these loops at a
//     fraction of what the CPU does;
//   - split over the OpenMP threads in contiguous ranges, one per thread, and serial below a size
//     where waking the threads costs more than the loop (kSerialMax).
// A body vectorises only without control flow: write selects with both sides loaded unconditionally
// ("const float d = dy[i]; dx[i] = x[i] <= 0 ? 0.0f : d;"), never a load under a condition, which
// the compiler must keep as a branch (relu_backward ran at 2 ns per element that way).
#pragma once
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/cpu/cpu_features.h"

namespace ember::cpu {

// Below this many elements a loop runs on the calling thread (a memory-bound loop of 32K floats
// takes a few microseconds, about what starting a parallel region costs).
constexpr int64_t kSerialMax = 32768;

// Runs body(begin, end) compiled for the widest vector units of this CPU: the body (a lambda) and
// whatever it calls are inlined into each clone of this function ('flatten': a body left out of
// line would be compiled for baseline x86-64 only, as happened to the max-pool backward's).
#if defined(__GNUC__)
#define EMBER_FLATTEN __attribute__((flatten))
#else
#define EMBER_FLATTEN
#endif
template <class Body>
EMBER_VECTOR_CLONES EMBER_FLATTEN void run_vectorised(const Body& body, int64_t begin, int64_t end) {
  body(begin, end);
}

// Splits [0, n) into one contiguous range per OpenMP thread, on the calling thread alone when
// work <= serial_max (work: the elements the whole loop touches, n by default), and runs
// body(begin, end) on each range through run_vectorised.
template <class Body>
void parallel_ranges(int64_t n, const Body& body, int64_t work = -1, int64_t serial_max = kSerialMax) {
  if (work < 0) work = n;
#pragma omp parallel if (work > serial_max)
  {
    int64_t t = 0, threads = 1;
#ifdef _OPENMP
    t = omp_get_thread_num();
    threads = omp_get_num_threads();
#endif
    const int64_t begin = n * t / threads, end = n * (t + 1) / threads;
    if (begin < end) run_vectorised(body, begin, end);
  }
}

// f(i) for every i in [0, n): an elementwise map, vectorised and threaded as above.
template <class F>
void parallel_map(int64_t n, const F& f) {
  parallel_ranges(n, [&](int64_t begin, int64_t end) {
    // A local copy: stores through the body's pointers could alias the captures of a shared f (a
    // captured float, reloaded every iteration, kept leaky_relu from vectorising).
    const F local = f;
    for (int64_t i = begin; i < end; ++i) local(i);
  });
}

// Sum of term(i) (a double) for i in [0, n), over 8 independent lanes so that the loop vectorises
// (a single accumulator is a chain the compiler may not reorder); the lanes are then added in a
// fixed order, so the result does not depend on the vector width.
template <class Term>
double lane_sum(int64_t n, const Term& term) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lane[k] += term(i + k);
  for (; i < n; ++i) lane[i % 8] += term(i);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

// Sum of x[0, n) in double.
inline double sum_double(const float* x, int64_t n) {
  return lane_sum(n, [x](int64_t i) { return static_cast<double>(x[i]); });
}

}  // namespace ember::cpu
