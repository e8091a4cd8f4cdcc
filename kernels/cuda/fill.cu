// CUDA fill family: constants and Philox random numbers, bit-identical to kernels/cpu/fill.cpp.
//
// Algorithm: one thread per element i evaluates philox::uniform / philox::normal(seed, offset, i)
// from core/philox.h, the same header-only code the CPU runs, so element i does not depend on
// the launch shape. Bit identity needs the same rounding: the header avoids the math library,
// and here lo + (hi - lo) * u is written with __fmul_rn / __fadd_rn so nvcc cannot fuse it into
// an FMA that the CPU (which has no FMA contraction on x86-64) would not compute. --use_fast_math
// would break this (it approximates division and sqrt): the build never sets it.
// Floor: 4 bytes written per element; Philox-10 costs ~20 integer multiplies per 4 numbers,
// so uniform fills run at memory speed and normals close to it.
#include "core/philox.h"
#include "kernels/cuda/map.cuh"

namespace ember::cuda {

namespace {

struct ConstF {
  float value;
  __device__ float operator()() const { return value; }
};

__global__ void uniform_kernel(int64_t n, float* y, uint64_t seed, uint64_t offset, float lo, float hi) {
  const int64_t i = global_index();
  if (i >= n) return;
  const float u = philox::uniform(seed, offset, static_cast<uint64_t>(i));
  y[i] = __fadd_rn(lo, __fmul_rn(hi - lo, u));
}

__global__ void normal_kernel(int64_t n, float* y, uint64_t seed, uint64_t offset, float mean, float std) {
  const int64_t i = global_index();
  if (i >= n) return;
  const float z = philox::normal(seed, offset, static_cast<uint64_t>(i));
  y[i] = __fadd_rn(mean, __fmul_rn(std, z));
}

}  // namespace

void fill(Tensor& y, float value) { launch_map(ConstF{value}, y.numel(), y.data()); }

void fill_uniform(Tensor& y, uint64_t seed, uint64_t offset, float lo, float hi) {
  linear_kernel(uniform_kernel, 0, stream(), y.numel(), y.data(), seed, offset, lo, hi);
}

void fill_normal(Tensor& y, uint64_t seed, uint64_t offset, float mean, float std) {
  linear_kernel(normal_kernel, 0, stream(), y.numel(), y.data(), seed, offset, mean, std);
}

}  // namespace ember::cuda
