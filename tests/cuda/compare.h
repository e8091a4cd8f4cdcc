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
#pragma once
#include <catch2/catch.hpp>
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
