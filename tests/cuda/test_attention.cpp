// Fused CUDA attention against the CPU reference (attention_reference.cpp), every variant, on the
// issue's grid: N in {4, 16, 64, 1024, 4096}, C in {8, 16, 64, 256} with dk = max(1, C/8) and
// dv in {C, C/2}, M in {N, N/4}, B in {1, 3}; forward (o, lse) and backward (dq, dk, dv). Outputs
// start as NaN so an unwritten element fails; each is checked against an error bound derived from
// the variant's rounding and the case's own tensors (tests/cuda/attention_bounds.h). At N = 4096
// the CPU reference costs ~10 GFLOP per case, so B = 3 is run there only for C <= 16 (the kernels
// see B only as grid.z). The N = 1024 and 4096 grids are tagged [large]: scripts/gpu_check.sh
// leaves them out of the compute-sanitizer runs, where they would use up the time box before any
// other test ran (the indexing they exercise is the same as at N = 64, plus more key tiles).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/cuda/attention.cuh"
#include "kernels/cpu/attention_reference.h"
#include "kernels/kernels.h"
#include "tests/cuda/attention_bounds.h"
#include "tests/cuda/compare.h"
#include "tests/harness.h"

using namespace ember;
using cuda::AttentionVariant;
using test::gpu::kEmulated;
using test::gpu::kSanitized;

namespace {

struct Case {
  int64_t B, dk, N, M, dv;
};

std::string describe(const Case& c, AttentionVariant v) {
  return std::string(cuda::attention_variant_name(v)) + " B=" + std::to_string(c.B) + " dk=" + std::to_string(c.dk) +
         " N=" + std::to_string(c.N) + " M=" + std::to_string(c.M) + " dv=" + std::to_string(c.dv);
}

// Tolerances: tests/cuda/attention_bounds.h derives, from the rounding of each variant (fp32 FMA,
// TF32 operands, 3xTF32) and the norms of the case's own tensors, an absolute bound on
// ||gpu - ref|| for o, lse, dq, dk and dv. It holds where the exact output is zero too (dq and dk
// when M = 1), where a relative error would compare rounding noise with rounding noise.
test::AttentionPrecision precision_of(AttentionVariant v) {
  switch (v) {
    case AttentionVariant::Simt: return test::kPrecSimt;
    case AttentionVariant::Tf32: return test::kPrecTf32;
    case AttentionVariant::Tf32x3: return test::kPrecTf32x3;
  }
  return test::kPrecSimt;
}

Tensor nan_cuda(const Shape& s) { return Tensor::full(s, NAN, Device::CUDA); }

// ||a - ref|| <= bound, any NaN or Inf in a fails; the message gives the relative error too.
void check_within(const char* what, const Tensor& a, const Tensor& ref, double bound) {
  std::vector<float> x = a.to_vector(), r = ref.to_vector();
  REQUIRE(x.size() == r.size());
  double num = 0, den = 0;
  bool finite = true;
  for (size_t i = 0; i < x.size(); ++i) {
    finite = finite && std::isfinite(x[i]);
    num += (double(x[i]) - r[i]) * (double(x[i]) - r[i]);
    den += double(r[i]) * r[i];
  }
  const double err = std::sqrt(num);
  INFO(what << ": ||gpu - ref|| = " << err << " (relative " << err / std::sqrt(den) << "), bound " << bound
            << " (relative " << bound / std::sqrt(den) << ")");
  CHECK(finite);
  CHECK(err <= bound);
}

void check_case(const Case& c, uint64_t seed, float q_range = 1.f) {
  Tensor q = test::random_tensor(Shape{c.B, c.dk, c.N}, seed, -q_range, q_range);
  Tensor k = test::random_tensor(Shape{c.B, c.dk, c.M}, seed + 1);
  Tensor v = test::random_tensor(Shape{c.B, c.dv, c.M}, seed + 2);
  Tensor g = test::random_tensor(Shape{c.B, c.dv, c.N}, seed + 3);
  Tensor ro = Tensor::empty(Shape{c.B, c.dv, c.N}), rl = Tensor::empty(Shape{c.B, c.N});
  cpu::reference::attention_forward(q, k, v, ro, rl);
  Tensor rq = Tensor::empty(q.shape()), rk = Tensor::empty(k.shape()), rv = Tensor::empty(v.shape());
  cpu::reference::attention_backward(q, k, v, ro, rl, g, rq, rk, rv);

  const AttentionVariant vars[] = {AttentionVariant::Simt, AttentionVariant::Tf32, AttentionVariant::Tf32x3};
  const std::vector<test::AttentionBounds> bounds = test::attention_bounds(
      {precision_of(vars[0]), precision_of(vars[1]), precision_of(vars[2])}, q, k, v, g, rl, ro, rq, rk, rv);
  Tensor qd = q.to(Device::CUDA), kd = k.to(Device::CUDA), vd = v.to(Device::CUDA), gd = g.to(Device::CUDA);
  for (int t = 0; t < 3; ++t) {
    const AttentionVariant var = vars[t];
    const test::AttentionBounds& b = bounds[t];
    INFO(describe(c, var));
    Tensor o = nan_cuda(ro.shape()), lse = nan_cuda(rl.shape());
    cuda::attention_forward_variant(var, qd, kd, vd, o, lse);
    check_within("o", o, ro, b.o);
    check_within("lse", lse, rl, b.lse);
    Tensor dq = nan_cuda(q.shape()), dk = nan_cuda(k.shape()), dv = nan_cuda(v.shape());
    cuda::attention_backward_variant(var, qd, kd, vd, o, lse, gd, dq, dk, dv);
    check_within("dv", dv, rv, b.dv);
    check_within("dq", dq, rq, b.dq);
    check_within("dk", dk, rk, b.dk);
  }
}

// The grid for one N (under emulation, N = 64 keeps the smallest and largest C).
void check_grid(int64_t N, uint64_t seed) {
  const std::vector<int64_t> Cs = kEmulated && N >= 64 ? std::vector<int64_t>{8, 256} : std::vector<int64_t>{8, 16, 64, 256};
  for (int64_t C : Cs)
    for (int64_t dv : {C, C / 2})
      for (int64_t M : {N, std::max<int64_t>(1, N / 4)})
        for (int64_t B : {1, 3}) {
          if (N == 4096 && B == 3 && C > 16) continue;  // CPU-reference time; see the file comment
          if (kSanitized && B == 1) continue;           // B = 3 reaches every batch offset B = 1 does
          const int64_t dk = std::max<int64_t>(1, C / 8);
          check_case(Case{B, dk, N, M, dv}, seed += 10);
        }
}

}  // namespace

TEST_CASE("attention: CUDA matches CPU, N = 4 and 16", "[attention][cuda]") {
  check_grid(4, 1000);
  check_grid(16, 2000);
}
TEST_CASE("attention: CUDA matches CPU, N = 64", "[attention][cuda]") { check_grid(64, 3000); }
TEST_CASE("attention: CUDA matches CPU, N = 1024", "[attention][cuda][large]") { check_grid(1024, 4000); }
TEST_CASE("attention: CUDA matches CPU, N = 4096", "[attention][cuda][large]") { check_grid(4096, 5000); }

TEST_CASE("attention: CUDA odd sizes, head dims up to 64, value dims up to 512", "[attention][cuda]") {
  // Under emulation the 300 x 1000 case shrinks to 130 x 200: still 3 query tiles, 7 key tiles, 3 value chunks.
  // Under the sanitizers the two largest cases shrink to 70 x 40: 2 query tiles of 64 rows, 2 key
  // tiles of 32, each with a tail; the value chunks (264 = 2 x 128 + 8, 512 = 4 x 128) stay.
  const Case big = kSanitized ? Case{1, 64, 70, 40, 264} : kEmulated ? Case{1, 64, 130, 200, 264} : Case{1, 64, 300, 1000, 264};
  const Case widest = kSanitized ? Case{2, 64, 70, 40, 512} : Case{2, 64, 129, 77, 512};
  for (Case c : {Case{2, 3, 37, 45, 20}, Case{1, 12, 70, 33, 140}, Case{1, 33, 20, 70, 9}, widest,
                 big, Case{3, 1, 1, 1, 1}, Case{1, 5, 1, 97, 7}})
    check_case(c, 6000 + c.N);
}

TEST_CASE("attention: CUDA peaked rows (scores up to ~+-100)", "[attention][cuda]") {
  check_case(Case{2, 16, 200, 150, 64}, 7000, 20.f);
}

TEST_CASE("attention: CUDA backward is deterministic", "[attention][cuda]") {
  const Case c = kEmulated ? Case{2, 8, 130, 70, 96} : Case{2, 8, 500, 300, 96};
  Tensor q = test::random_tensor(Shape{c.B, c.dk, c.N}, 1).to(Device::CUDA);
  Tensor k = test::random_tensor(Shape{c.B, c.dk, c.M}, 2).to(Device::CUDA);
  Tensor v = test::random_tensor(Shape{c.B, c.dv, c.M}, 3).to(Device::CUDA);
  Tensor g = test::random_tensor(Shape{c.B, c.dv, c.N}, 4).to(Device::CUDA);
  for (AttentionVariant var : {AttentionVariant::Simt, AttentionVariant::Tf32}) {
    Tensor o = nan_cuda(Shape{c.B, c.dv, c.N}), lse = nan_cuda(Shape{c.B, c.N});
    cuda::attention_forward_variant(var, q, k, v, o, lse);
    std::vector<std::vector<float>> runs[2];
    for (auto& r : runs) {
      Tensor dq = nan_cuda(q.shape()), dk = nan_cuda(k.shape()), dv = nan_cuda(v.shape());
      cuda::attention_backward_variant(var, q, k, v, o, lse, g, dq, dk, dv);
      r = {dq.to_vector(), dk.to_vector(), dv.to_vector()};
    }
    CHECK(runs[0] == runs[1]);
  }
}

TEST_CASE("attention: ops::attention on CUDA (default variant) and its autograd", "[attention][cuda]") {
  Case c{3, 8, 256, 64, 32};
  Tensor q = test::random_param(Shape{c.B, c.dk, c.N}, 11), k = test::random_param(Shape{c.B, c.dk, c.M}, 12);
  Tensor v = test::random_param(Shape{c.B, c.dv, c.M}, 13);
  Tensor g = test::random_tensor(Shape{c.B, c.dv, c.N}, 14);
  Tensor qd = q.detach().to(Device::CUDA), kd = k.detach().to(Device::CUDA), vd = v.detach().to(Device::CUDA);
  for (Tensor* t : {&qd, &kd, &vd}) t->requires_grad_(true);
  Tensor o_cpu = ops::attention(q, k, v), o_gpu = ops::attention(qd, kd, vd);
  const AttentionVariant var = cuda::attention_default_variant();
  INFO("default variant " << cuda::attention_variant_name(var));
  CHECK(o_gpu.is_cuda());
  o_cpu.backward(g);
  o_gpu.backward(g.to(Device::CUDA));
  Tensor ro = Tensor::empty(o_cpu.shape()), rl = Tensor::empty(Shape{c.B, c.N});  // the bound needs lse
  cpu::reference::attention_forward(q.detach(), k.detach(), v.detach(), ro, rl);
  const test::AttentionBounds b = test::attention_bounds({precision_of(var)}, q.detach(), k.detach(), v.detach(), g,
                                                         rl, o_cpu.detach(), q.grad(), k.grad(), v.grad())[0];
  check_within("o", o_gpu.to(Device::CPU), o_cpu.detach(), b.o);
  check_within("dq", qd.grad().to(Device::CPU), q.grad(), b.dq);
  check_within("dk", kd.grad().to(Device::CPU), k.grad(), b.dk);
  check_within("dv", vd.grad().to(Device::CPU), v.grad(), b.dv);
}

TEST_CASE("attention: attention_probs on CUDA matches CPU", "[attention][cuda]") {
  for (Case c : {Case{1, 8, 1024, 256, 1}, Case{3, 32, 4096, 4096, 1}, Case{3, 1, 4, 1, 1}, Case{2, 5, 77, 300, 1}}) {
    INFO("B=" << c.B << " dk=" << c.dk << " N=" << c.N << " M=" << c.M);
    Tensor q = test::random_tensor(Shape{c.B, c.dk, c.N}, 50 + c.N), k = test::random_tensor(Shape{c.B, c.dk, c.M}, 51);
    std::vector<int64_t> pos = {c.N - 1, 0, c.N / 3};
    Tensor p_cpu = ops::attention_probs(q, k, pos);
    Tensor p_gpu = ops::attention_probs(q.to(Device::CUDA), k.to(Device::CUDA), pos);
    CHECK(p_gpu.is_cuda());
    check_within("probs", p_gpu, p_cpu, test::attention_probs_bound(q, k, p_cpu));
  }
}

TEST_CASE("attention: the forward's residual epilogue equals attention then gamma_residual", "[attention][cuda]") {
  // The SAGAN block's epilogue in the kernel's store (AttentionEpilogue): y = gamma o + x, with o
  // written too (training) or not at all (eval). Against the composed path on the same device: o
  // and lse are the same kernel's and must agree bitwise; y is one multiply-add either way, the
  // same expression in both kernels, so it agrees bitwise where both round alike (the emulation,
  // which forbids contraction) and to one rounding of the sum on a GPU, where nvcc may contract
  // either into an FMA (<= 2^-23 relative per element; 1e-6 over the tensor). N, M not multiples
  // of the 64-query and 32-key tiles; dv = 136 crosses a value-chunk boundary (kDvChunk = 128).
  for (Case c : {Case{2, 1, 15, 15, 8}, Case{1, 8, 70, 70, 136}}) {
    Tensor q = test::random_tensor(Shape{c.B, c.dk, c.N}, 60).to(Device::CUDA);
    Tensor k = test::random_tensor(Shape{c.B, c.dk, c.M}, 61).to(Device::CUDA);
    Tensor v = test::random_tensor(Shape{c.B, c.dv, c.M}, 62).to(Device::CUDA);
    Tensor x = test::random_tensor(Shape{c.B, c.dv, c.N}, 63).to(Device::CUDA);
    Tensor gamma = Tensor::full(Shape{1}, 0.75f, Device::CUDA);
    for (AttentionVariant var : {AttentionVariant::Simt, AttentionVariant::Tf32, AttentionVariant::Tf32x3}) {
      INFO(describe(c, var));
      Tensor o_ref = nan_cuda(x.shape()), lse_ref = nan_cuda(Shape{c.B, c.N}), y_ref = nan_cuda(x.shape());
      cuda::attention_forward_variant(var, q, k, v, o_ref, lse_ref);
      cuda::gamma_residual_forward(gamma, o_ref, x, y_ref);
      const std::vector<float> y_want = y_ref.to_vector();
      for (bool keep_o : {true, false}) {
        INFO((keep_o ? "o written (training)" : "o not written (eval)"));
        Tensor o = keep_o ? nan_cuda(x.shape()) : Tensor(), lse = nan_cuda(Shape{c.B, c.N}), y = nan_cuda(x.shape());
        cuda::attention_forward_residual(var, q, k, v, gamma, x, o, y, lse);
        CHECK(lse.to_vector() == lse_ref.to_vector());
        if (keep_o) CHECK(o.to_vector() == o_ref.to_vector());
        REQUIRE(test::all_finite(y.to(Device::CPU)));
        if (kEmulated) CHECK(y.to_vector() == y_want);
        else CHECK(test::rel_err(y.to(Device::CPU), y_ref.to(Device::CPU)) < 1e-6);
      }
    }
  }
}

TEST_CASE("attention: the residual epilogue refuses aliased or missing buffers", "[attention][cuda][errors]") {
  Tensor q = test::random_tensor(Shape{1, 2, 8}, 70).to(Device::CUDA), k = q.clone();
  Tensor v = test::random_tensor(Shape{1, 4, 8}, 71).to(Device::CUDA), x = nan_cuda(Shape{1, 4, 8});
  Tensor gamma = Tensor::zeros(Shape{1}, Device::CUDA), lse = nan_cuda(Shape{1, 8}), o = nan_cuda(x.shape());
  CHECK_THROWS_WITH(cuda::attention_forward_residual(AttentionVariant::Simt, q, k, v, gamma, x, o, x, lse),
                    Catch::Contains("may not alias"));
  Tensor small = nan_cuda(Shape{1, 4, 7});
  CHECK_THROWS_WITH(cuda::attention_forward_residual(AttentionVariant::Simt, q, k, v, gamma, x, o, small, lse),
                    Catch::Contains("the residual, y and o 32 (B dv N)"));
}
