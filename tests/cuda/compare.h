// The CUDA test harness: run a kernel (or an op) on the CPU and on the GPU with the same
// random inputs and compare, with a stated tolerance on ||cuda - cpu|| / ||cpu||.
//
// Outputs start as NaN on the GPU, so an element a kernel forgets to write fails. The CPU
// kernels are the reference (each is tested against double-precision formulas in tests/).
// Tolerances:
//   kFp32Tol  1e-5  fp32 kernels: only the order of float operations differs (sums as trees,
//                   FMA contraction, libdevice vs glibc transcendentals within 2 ulp).
//   kTf32Tol  1e-2  GEMM and convolution on TF32 tensor cores (10-bit mantissa inputs: about
//                   1e-3 relative per product; 1e-2 leaves room for cancellation).
//
// Tags: every test that runs cuBLAS or cuDNN kernels, directly or through an op, layer or model
// (matmul, linear, conv, conv_transpose), carries [library] and says which with [cublas] and/or
// [cudnn]. scripts/gpu_check.sh leaves [library] out of the compute-sanitizer runs, which would
// otherwise report on the libraries' internals; a new test of that kind must carry the tags.
#pragma once
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/device_memory.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"
#include "tests/harness.h"

namespace ember::test::gpu {

// True in the emulated build (tests/emulation, docs/emulation.md), which runs these tests on the
// CPU: a few shapes that take minutes there have smaller stand-ins reaching the same variants
// and branches; the full shapes run on GPUs.
#ifdef EMBER_EMULATION
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif
// True in the emulated suite's sanitizer build (scripts/sanitize.sh, AddressSanitizer + UBSan):
// the shapes that take minutes there have smaller stand-ins that still reach every variant, size
// class and branch (tails, misaligned rows, several blocks per ticket); the optimised emulated run
// of scripts/test.sh and GPUs keep the full ones.
#ifdef EMBER_EMU_SANITIZED
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

constexpr double kFp32Tol = 1e-5;
constexpr double kTf32Tol = 1e-2;
const float kNaN = std::numeric_limits<float>::quiet_NaN();

inline Tensor nan_tensor(const Shape& s, Device d = Device::CPU) { return Tensor::full(s, kNaN, d); }

// A CUDA copy of t whose data pointer is NOT 16-byte aligned (offset by one float in a larger
// storage): exercises the scalar paths of the float4 kernels.
inline Tensor misaligned_cuda(const Tensor& t) {
  Tensor big = Tensor::empty(Shape{t.numel() + 1}, Device::CUDA);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = big.impl()->storage;
  impl->offset = 1;
  impl->shape = t.shape();
  Tensor view(std::move(impl));
  view.copy_(t);
  return view;
}

// Sets context().allow_tf32 for one scope.
class Tf32Scope {
 public:
  explicit Tf32Scope(bool on) : prev_(context().allow_tf32) { context().allow_tf32 = on; }
  ~Tf32Scope() { context().allow_tf32 = prev_; }
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;

 private:
  bool prev_;
};

// Checks ||cuda_out - cpu_out|| / ||cpu_out|| <= tol (any NaN in cuda_out fails).
inline void check_close(const std::string& what, const Tensor& cuda_out, const Tensor& cpu_out, double tol) {
  REQUIRE(cuda_out.defined());
  REQUIRE(cpu_out.defined());
  REQUIRE(cuda_out.is_cuda());
  REQUIRE(cuda_out.shape() == cpu_out.shape());
  const double e = rel_err(cuda_out, cpu_out);
  INFO(what << " " << cpu_out.shape() << ": ||cuda - cpu|| / ||cpu|| = " << e << ", tolerance " << tol);
  CHECK(e <= tol);
}

// t with NaN, +Inf and -Inf written over every `stride`-th element (in turn, from `first`).
inline Tensor with_nonfinite(const Tensor& t, int64_t stride, int64_t first = 0) {
  std::vector<float> v = t.to_vector();
  const float inf = std::numeric_limits<float>::infinity();
  const float bad[3] = {kNaN, inf, -inf};
  for (int64_t i = first, k = 0; i < static_cast<int64_t>(v.size()); i += stride, ++k) v[size_t(i)] = bad[k % 3];
  return Tensor::from_vector(v, t.shape());
}

// For inputs holding NaN/Inf: cuda_out has NaN, +Inf and -Inf exactly where cpu_out has them
// (the CPU kernels propagate them as PyTorch does, see tests/test_*.cpp [nonfinite]), and
// the finite elements agree within tol (||cuda - cpu|| / ||cpu|| over them).
inline void check_same_nonfinite(const std::string& what, const Tensor& cuda_out, const Tensor& cpu_out,
                                 double tol = kFp32Tol) {
  REQUIRE(cuda_out.shape() == cpu_out.shape());
  std::vector<float> g = cuda_out.to(Device::CPU).to_vector(), c = cpu_out.to(Device::CPU).to_vector();
  double num = 0, den = 0;
  int64_t mismatched = 0, first_bad = -1, n_nonfinite = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    if (std::isfinite(c[i])) {
      if (!std::isfinite(g[i])) {
        ++mismatched;
        if (first_bad < 0) first_bad = int64_t(i);
        continue;
      }
      num += (double(g[i]) - c[i]) * (double(g[i]) - c[i]);
      den += double(c[i]) * c[i];
      continue;
    }
    ++n_nonfinite;
    const bool same = std::isnan(c[i]) ? std::isnan(g[i]) : g[i] == c[i];
    if (!same) {
      ++mismatched;
      if (first_bad < 0) first_bad = int64_t(i);
    }
  }
  INFO(what << ": " << mismatched << " element(s) differ in NaN/Inf, the first at " << first_bad << " (cpu "
            << (first_bad >= 0 ? c[size_t(first_bad)] : 0.f) << ", cuda " << (first_bad >= 0 ? g[size_t(first_bad)] : 0.f)
            << "); " << n_nonfinite << " non-finite expected");
  CHECK(mismatched == 0);
  const double e = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  INFO(what << ": finite elements ||cuda - cpu|| / ||cpu|| = " << e);
  CHECK(e <= tol);
}

// Runs the op f on CPU and CUDA copies of inputs holding NaN/Inf and checks the value and the
// gradient of sum(f(x) * R) with check_same_nonfinite.
inline void compare_op_nonfinite(const std::string& what, const Fn& f, const std::vector<Tensor>& inputs,
                                 double tol = kFp32Tol) {
  std::vector<Tensor> cpu_leaves, gpu_leaves;
  for (const Tensor& t : inputs) {
    cpu_leaves.push_back(t.clone().requires_grad_(true));
    gpu_leaves.push_back(t.to(Device::CUDA).requires_grad_(true));
  }
  Tensor yc = f(cpu_leaves), yg = f(gpu_leaves);
  check_same_nonfinite(what + ": value", yg, yc, tol);
  Tensor R = random_tensor(yc.shape(), 778, 0.5f, 1.5f);
  ops::sum(ops::mul(yc, R)).backward();
  ops::sum(ops::mul(yg, R.to(Device::CUDA))).backward();
  for (size_t i = 0; i < inputs.size(); ++i)
    check_same_nonfinite(what + ": gradient of input " + std::to_string(i), gpu_leaves[i].grad(), cpu_leaves[i].grad(), tol);
}

// Runs `run(device, inputs, outputs)` once with CPU tensors and once with CUDA copies, then
// compares every output. `outputs` are CPU tensors with their initial contents (NaN for pure
// outputs; real values for in-place state such as running statistics); each run gets its own
// copy. Returns the CUDA outputs.
using KernelRun = std::function<void(Device, const std::vector<Tensor>& in, std::vector<Tensor>& out)>;
inline std::vector<Tensor> compare_kernel(const std::string& what, const std::vector<Tensor>& inputs,
                                          const std::vector<Tensor>& outputs, const KernelRun& run,
                                          double tol = kFp32Tol) {
  std::vector<Tensor> in_gpu, out_cpu, out_gpu;
  for (const Tensor& t : inputs) in_gpu.push_back(t.to(Device::CUDA));
  for (const Tensor& t : outputs) {
    out_cpu.push_back(t.clone());
    out_gpu.push_back(t.to(Device::CUDA));
  }
  run(Device::CPU, inputs, out_cpu);
  run(Device::CUDA, in_gpu, out_gpu);
  cuda_rt::synchronize();
  for (size_t i = 0; i < outputs.size(); ++i)
    check_close(what + ", output " + std::to_string(i), out_gpu[i], out_cpu[i], tol);
  // Inputs are read-only.
  for (size_t i = 0; i < inputs.size(); ++i) {
    INFO(what << ": input " << i << " was modified");
    CHECK(in_gpu[i].to_vector() == inputs[i].to_vector());
  }
  return out_gpu;
}

// Runs the op f on CPU leaves and on CUDA copies of them, compares the values, then the
// gradients of sum(f(x) * R) (R fixed random) with respect to every input marked in `grad`
// (all when empty).
inline void compare_op(const std::string& what, const Fn& f, const std::vector<Tensor>& inputs, double tol = kFp32Tol,
                       std::vector<bool> grad = {}) {
  if (grad.empty()) grad.assign(inputs.size(), true);
  std::vector<Tensor> cpu_leaves, gpu_leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor c = inputs[i].clone(), g = inputs[i].to(Device::CUDA);
    if (grad[i]) {
      c.requires_grad_(true);
      g.requires_grad_(true);
    }
    cpu_leaves.push_back(c);
    gpu_leaves.push_back(g);
  }
  Tensor yc = f(cpu_leaves), yg = f(gpu_leaves);
  check_close(what + ": value", yg, yc, tol);
  Tensor R = random_tensor(yc.shape(), 777, 0.5f, 1.5f);
  ops::sum(ops::mul(yc, R)).backward();
  ops::sum(ops::mul(yg, R.to(Device::CUDA))).backward();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!grad[i]) continue;
    INFO(what << ": gradient of input " << i);
    REQUIRE(gpu_leaves[i].grad().defined());
    check_close(what + ": gradient " + std::to_string(i), gpu_leaves[i].grad(), cpu_leaves[i].grad(), tol);
  }
}

}  // namespace ember::test::gpu
