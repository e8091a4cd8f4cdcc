// Spectral normalisation on CUDA against the CPU reference: the fused power iteration (several
// steps in a row, so the kernels' atomic tickets must be reset), eval-mode sigma, w / sigma and
// the backward, for dims 0 and 1, 16-byte and scalar loads, skinny and wide matrices; the
// unfused PyTorch-sequence baseline; and the op with autograd. Outputs start as NaN.
// The launchers run on ember's stream (cuda_rt::stream(): they assert it, the one-stream
// invariant of core/cuda/cuda_context.cuh); the blocking cudaMemcpy in and out of the buffers is
// fenced by cudaDeviceSynchronize on both sides.
#include <catch2/catch.hpp>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/cuda/cuda_context.cuh"
#include "kernels/cuda/spectral_norm.cuh"
#include "kernels/kernels.h"
#include "kernels/spectral_norm_layout.h"
#include "tests/cuda/compare.h"
#include "tests/harness.h"

using namespace ember;
using ember::test::gpu::kEmulated;
using ember::test::gpu::kSanitized;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Device storage for a host vector, `shift` floats past an aligned start (shift 1 forces the
// scalar load path).
struct Dev {
  Tensor buf;
  float* p = nullptr;
  int64_t n = 0;
  Dev(const std::vector<float>& host, int shift = 0) : n(static_cast<int64_t>(host.size())) {
    buf = Tensor::full(Shape{n + shift}, kNaN, Device::CUDA);
    p = buf.data() + shift;
    // The fill runs on ember's stream, the copy below on the default one: wait for the fill.
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    REQUIRE(cudaMemcpy(p, host.data(), n * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  }
  static Dev nans(int64_t n, int shift = 0) { return Dev(std::vector<float>(n, kNaN), shift); }
  Tensor host(const Shape& s) const {
    std::vector<float> h(n);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    REQUIRE(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
    return Tensor::from_vector(h, s);
  }
};

Tensor unit(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor x = randn(Shape{n}, gen);
  std::vector<float> v = x.to_vector();
  double s = 0;
  for (float e : v) s += static_cast<double>(e) * e;
  for (float& e : v) e = static_cast<float>(e / std::sqrt(s));
  return Tensor::from_vector(v, Shape{n});
}

struct Case {
  Shape shape;
  int dim;
};

// Shapes: tiny, prime, Linear/Conv2d (dim 0), ConvTranspose2d (dim 1, inner 16 and 9), one row,
// one column, skinny and wide, and the benchmark's 512 x 4608 (under emulation, where it takes
// minutes, 300 x 1500 and 64 x 128 x 4 x 4 stand in for the two largest: still many row and
// column tiles). Under sanitizers the large ones shrink again, keeping what each reaches: 40 x 1100
// (three column tiles of 128 threads), 16 x 40 x 4 x 4, 4500 x 5 for 600 x 700 (a tile of more
// rows than row groups: 18 > 16, as 600 x 700 has 5 > 4), 1 x 3000 (six column tiles, one row),
// 700 x 1 and 1200 x 27 (tens of row tiles of one column tile).
std::vector<Case> cases() {
  const Shape big = kSanitized ? Shape{40, 1100} : kEmulated ? Shape{300, 1500} : Shape{512, 4608};
  const Shape big_t = kSanitized ? Shape{16, 40, 4, 4} : kEmulated ? Shape{64, 128, 4, 4} : Shape{256, 128, 4, 4};
  const Shape tall_tiles = kSanitized ? Shape{4500, 5} : Shape{600, 700};
  const Shape one_row = kSanitized ? Shape{1, 3000} : Shape{1, 10000};
  const Shape one_col = kSanitized ? Shape{700, 1} : Shape{3001, 1};
  const Shape skinny = kSanitized ? Shape{1200, 27} : Shape{4096, 27};
  return {{Shape{1, 1}, 0},         {Shape{3, 5}, 0},           {Shape{37, 53}, 0},     {Shape{64, 3, 3, 3}, 0},
          {Shape{8, 12, 4, 4}, 1},  {Shape{5, 7, 3, 3}, 1},     {one_row, 0},           {one_col, 0},
          {skinny, 0},              {tall_tiles, 0},            {big, 0},               {big_t, 1},
          {Shape{1000, 3, 5}, 1}};
}

cuda::SnDims dims(const Case& k) {
  const SnLayout l = sn_layout(k.shape, k.dim);
  return {l.rows, l.cols(), l.inner};
}

double rel_scalar(float a, float b) { return std::fabs(static_cast<double>(a) - b) / std::fabs(static_cast<double>(b)); }

}  // namespace

TEST_CASE("spectral_norm: fused CUDA kernels match the CPU over dims, shapes and load paths", "[spectral_norm][cuda]") {
  uint64_t seed = 10;
  for (const Case& k : cases())
    for (int shift : {0, 1}) {
      CAPTURE(k.shape, k.dim, shift);
      const cuda::SnDims d = dims(k);
      Tensor w = test::random_tensor(k.shape, ++seed);
      Tensor u = unit(d.rows, ++seed), v = unit(d.cols, ++seed), sigma = Tensor::zeros(Shape{1});
      Dev dw(w.to_vector(), shift), du(u.to_vector()), dv = Dev::nans(d.cols), ds = Dev::nans(1);
      Tensor ws = Tensor::empty(Shape{cuda::sn_workspace_floats(d)}, Device::CUDA);

      // Three steps in a row: each launch must leave its tickets at zero for the next.
      for (int step = 0; step < 3; ++step) {
        CAPTURE(step);
        cpu::spectral_norm_power_iteration(w, k.dim, 1e-12f, u, v, sigma);
        cuda::sn_power_iteration_launch(dw.p, d, 1e-12f, du.p, dv.p, ds.p, ws.data(), cuda_rt::stream());
        CHECK(test::rel_err(du.host(u.shape()), u) < 1e-5);
        CHECK(test::rel_err(dv.host(v.shape()), v) < 1e-5);
        CHECK(rel_scalar(ds.host(Shape{1}).item(), sigma.item()) < 1e-5);
      }

      // Eval mode: sigma from the (shared) u, v.
      Tensor sig_eval = Tensor::zeros(Shape{1});
      cpu::spectral_norm_sigma(w, k.dim, u, v, sig_eval);
      Dev du2(u.to_vector()), dv2(v.to_vector()), ds2 = Dev::nans(1);
      cuda::sn_sigma_launch(dw.p, d, du2.p, dv2.p, ds2.p, ws.data(), cuda_rt::stream());
      CHECK(rel_scalar(ds2.host(Shape{1}).item(), sig_eval.item()) < 1e-5);
      CHECK(test::rel_err(du2.host(u.shape()), u) == 0.0);  // eval leaves u and v alone
      CHECK(test::rel_err(dv2.host(v.shape()), v) == 0.0);

      // w / sigma with the CPU's sigma on both sides.
      Tensor w_sn = Tensor::empty(k.shape);
      cpu::spectral_norm_scale(w, sigma, w_sn);
      Dev dsig(sigma.to_vector()), dout = Dev::nans(w.numel(), shift);
      cuda::sn_scale_launch(dw.p, dsig.p, dout.p, w.numel(), cuda_rt::stream());
      CHECK(test::rel_err(dout.host(k.shape), w_sn) < 1e-6);

      // Backward, twice (tickets again).
      Tensor g = test::random_tensor(k.shape, ++seed), grad = Tensor::empty(k.shape);
      cpu::spectral_norm_backward(w, k.dim, u, v, sigma, g, grad);
      Dev dg(g.to_vector(), shift), du3(u.to_vector()), dv3(v.to_vector());
      for (int rep = 0; rep < 2; ++rep) {
        Dev dgrad = Dev::nans(w.numel(), shift);
        cuda::sn_backward_launch(dw.p, d, du3.p, dv3.p, dsig.p, dg.p, dgrad.p, ws.data(), cuda_rt::stream());
        CHECK(test::rel_err(dgrad.host(k.shape), grad) < 1e-5);
      }
    }
}

TEST_CASE("spectral_norm: the unfused PyTorch-sequence baseline matches the CPU",
          "[spectral_norm][cuda][cublas][library]") {
  cublasHandle_t h = nullptr;
  REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
  uint64_t seed = 500;
  const Shape big = kSanitized ? Shape{40, 1100} : kEmulated ? Shape{300, 1500} : Shape{512, 4608};
  for (const Case& k : {Case{Shape{37, 53}, 0}, Case{Shape{8, 12, 4, 4}, 1}, Case{big, 0}}) {
    CAPTURE(k.shape, k.dim);
    const cuda::SnDims d = dims(k);
    Tensor w = test::random_tensor(k.shape, ++seed);
    Tensor u = unit(d.rows, ++seed), v = unit(d.cols, ++seed), sigma = Tensor::zeros(Shape{1});
    Dev dw(w.to_vector()), du(u.to_vector()), dv = Dev::nans(d.cols), ds = Dev::nans(1), dout = Dev::nans(w.numel());
    Tensor ws = Tensor::empty(Shape{cuda::sn_unfused_workspace_floats(d)}, Device::CUDA);
    cpu::spectral_norm_power_iteration(w, k.dim, 1e-12f, u, v, sigma);
    Tensor w_sn = Tensor::empty(k.shape);
    cpu::spectral_norm_scale(w, sigma, w_sn);
    cuda::sn_unfused_forward(h, dw.p, d, 1e-12f, du.p, dv.p, ds.p, dout.p, ws.data(), cuda_rt::stream());
    CHECK(test::rel_err(du.host(u.shape()), u) < 1e-5);
    CHECK(test::rel_err(dv.host(v.shape()), v) < 1e-5);
    CHECK(rel_scalar(ds.host(Shape{1}).item(), sigma.item()) < 1e-5);
    CHECK(test::rel_err(dout.host(k.shape), w_sn) < 1e-5);
  }
  cublasDestroy(h);
}

TEST_CASE("spectral_norm: sigma on CUDA converges to the CPU's after many steps", "[spectral_norm][cuda]") {
  Tensor w = test::random_tensor(Shape{96, 200}, 900);
  Tensor u = unit(96, 901), v = unit(200, 902), s = Tensor::zeros(Shape{1});
  Tensor ug = u.to(Device::CUDA), vg = v.to(Device::CUDA), sg = Tensor::zeros(Shape{1}, Device::CUDA);
  Tensor wg = w.to(Device::CUDA);
  // 500 steps; 5 under sanitizers (each step is two launches of twelve 512-thread blocks, ~3 s of
  // CPU there; the sanitized run is there for memory errors, which the first steps already show).
  for (int it = 0; it < (kSanitized ? 5 : 500); ++it) {
    ops::spectral_norm(w, 0, u, v, s, true);
    ops::spectral_norm(wg, 0, ug, vg, sg, true);
  }
  CHECK(rel_scalar(sg.item(), s.item()) < 1e-5);
}

TEST_CASE("spectral_norm: ops::spectral_norm on CUDA with autograd matches the CPU", "[spectral_norm][cuda]") {
  uint64_t seed = 700;
  for (const Case& k : {Case{Shape{24, 40}, 0}, Case{Shape{16, 8, 4, 4}, 1}}) {
    for (bool training : {true, false}) {
      CAPTURE(k.shape, k.dim, training);
      const cuda::SnDims d = dims(k);
      Tensor wc = test::random_param(k.shape, ++seed);
      Tensor wg = wc.detach().to(Device::CUDA);
      wg.requires_grad_();
      Tensor uc = unit(d.rows, ++seed), vc = unit(d.cols, ++seed), sc = Tensor::zeros(Shape{1});
      Tensor ug = uc.to(Device::CUDA), vg = vc.to(Device::CUDA), sg = Tensor::zeros(Shape{1}, Device::CUDA);
      Tensor oc = ops::spectral_norm(wc, k.dim, uc, vc, sc, training);
      Tensor og = ops::spectral_norm(wg, k.dim, ug, vg, sg, training);
      CHECK(test::rel_err(og.to(Device::CPU), oc) < 1e-5);
      CHECK(test::rel_err(ug.to(Device::CPU), uc) < 1e-5);
      CHECK(rel_scalar(sg.item(), sc.item()) < 1e-5);
      Tensor g = test::random_tensor(k.shape, ++seed);
      oc.backward(g);
      og.backward(g.to(Device::CUDA));
      CHECK(test::rel_err(wg.grad().to(Device::CPU), wc.grad()) < 1e-5);
    }
  }
}

TEST_CASE("spectral_norm: a NaN weight gives NaN sigma, u and output on CUDA as on the CPU", "[spectral_norm][cuda][nonfinite]") {
  std::vector<float> wv = test::random_tensor(Shape{64, 27}, 95).to_vector();
  wv[100] = kNaN;
  Tensor w = Tensor::from_vector(wv, Shape{64, 27});
  Tensor u = test::random_tensor(Shape{64}, 96), v = test::random_tensor(Shape{27}, 97);
  Tensor uc = u.clone(), vc = v.clone(), sc = Tensor::zeros(Shape{1});
  Tensor ug = u.to(Device::CUDA), vg = v.to(Device::CUDA), sg = Tensor::zeros(Shape{1}, Device::CUDA);
  Tensor oc = ops::spectral_norm(w, 0, uc, vc, sc, true), og = ops::spectral_norm(w.to(Device::CUDA), 0, ug, vg, sg, true);
  CHECK(std::isnan(sc.item()));
  test::gpu::check_same_nonfinite("sigma", sg, sc);
  test::gpu::check_same_nonfinite("u", ug, uc);
  test::gpu::check_same_nonfinite("output", og, oc);
}

namespace {
bool same_bits(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}
}  // namespace

// The grouped launches against one launch per weight: bitwise, in training (three steps: the
// tickets of every weight's slots must be left at zero) and eval, with 16-byte and scalar loads
// mixed in one table, and more weights than one table holds (26 > kSnGroupMax: two tables).
TEST_CASE("spectral_norm: the grouped CUDA step equals the per-weight launches bitwise", "[spectral_norm][cuda][group]") {
  // Under emulation the largest shapes give way to smaller ones that still span several row and
  // column tiles (the per-weight test above runs the big ones); under the sanitizers (every access
  // checked, minutes per large weight) smaller still.
  const int64_t largest = kSanitized ? 2000 : 30000;
  std::vector<Case> ks;
  for (const Case& k : cases())
    if (!kEmulated || k.shape.numel() <= largest) ks.push_back(k);
  if (kSanitized) ks.push_back({Shape{12, 300}, 0}), ks.push_back({Shape{2, 3, 150}, 1});
  else if (kEmulated) ks.push_back({Shape{40, 600}, 0}), ks.push_back({Shape{2, 3, 700}, 1});
  while (ks.size() < 26) ks.push_back({Shape{static_cast<int64_t>(ks.size()) + 2, 9}, 0});
  for (int count : {3, static_cast<int>(ks.size())}) {
    CAPTURE(count);
    std::vector<Dev> w, ug, vg, sg, ua, va, sa;
    std::vector<cuda::SnGroupItem> items;
    uint64_t seed = 1500;
    for (int i = 0; i < count; ++i) {
      const cuda::SnDims d = dims(ks[i]);
      w.emplace_back(test::random_tensor(ks[i].shape, ++seed).to_vector(), i % 2);  // odd items: scalar loads
      const std::vector<float> u0 = unit(d.rows, ++seed).to_vector(), v0 = unit(d.cols, ++seed).to_vector();
      ug.emplace_back(u0), ua.emplace_back(u0), vg.emplace_back(v0), va.emplace_back(v0);
      sg.push_back(Dev::nans(1)), sa.push_back(Dev::nans(1));
    }
    for (int i = 0; i < count; ++i) items.push_back({w[i].p, dims(ks[i]), 1e-12f, ug[i].p, vg[i].p, sg[i].p});
    Tensor gws = Tensor::empty(Shape{cuda::sn_group_workspace_floats(items.data(), count)}, Device::CUDA);
    for (int step = 0; step < 4; ++step) {
      const bool training = step != 2;  // train, train, eval, train
      CAPTURE(step);
      cuda::sn_group_step_launch(items.data(), count, training, gws.data(), cuda_rt::stream());
      for (int i = 0; i < count; ++i) {
        const cuda::SnDims d = dims(ks[i]);
        Tensor ws = Tensor::empty(Shape{cuda::sn_workspace_floats(d)}, Device::CUDA);
        if (training)
          cuda::sn_power_iteration_launch(w[i].p, d, 1e-12f, ua[i].p, va[i].p, sa[i].p, ws.data(), cuda_rt::stream());
        else
          cuda::sn_sigma_launch(w[i].p, d, ua[i].p, va[i].p, sa[i].p, ws.data(), cuda_rt::stream());
      }
      for (int i = 0; i < count; ++i) {
        CAPTURE(i, ks[i].shape);
        const cuda::SnDims d = dims(ks[i]);
        const Tensor sig = sg[i].host(Shape{1});
        CHECK(std::isfinite(sig.item()));
        CHECK(same_bits(sig, sa[i].host(Shape{1})));
        CHECK(same_bits(ug[i].host(Shape{d.rows}), ua[i].host(Shape{d.rows})));
        CHECK(same_bits(vg[i].host(Shape{d.cols}), va[i].host(Shape{d.cols})));
      }
    }
  }
}

TEST_CASE("spectral_norm: ops::spectral_norm_step_group on CUDA matches the CPU", "[spectral_norm][cuda][group]") {
  uint64_t seed = 1700;
  std::vector<SnStepItem> cpu_items, gpu_items;
  for (const Case& k : {Case{Shape{24, 40}, 0}, Case{Shape{16, 8, 4, 4}, 1}, Case{Shape{8, 3, 3, 3}, 0}}) {
    const cuda::SnDims d = dims(k);
    SnStepItem c;
    c.w = test::random_tensor(k.shape, ++seed);
    c.dim = k.dim;
    c.u = unit(d.rows, ++seed);
    c.v = unit(d.cols, ++seed);
    c.sigma = Tensor::zeros(Shape{1});
    SnStepItem g = c;
    g.w = c.w.to(Device::CUDA), g.u = c.u.to(Device::CUDA), g.v = c.v.to(Device::CUDA);
    g.sigma = Tensor::full(Shape{1}, kNaN, Device::CUDA);
    cpu_items.push_back(c), gpu_items.push_back(g);
  }
  for (bool training : {true, true, false}) {
    CAPTURE(training);
    ops::spectral_norm_step_group(cpu_items, training);
    ops::spectral_norm_step_group(gpu_items, training);
    for (size_t i = 0; i < cpu_items.size(); ++i) {
      CAPTURE(i);
      CHECK(test::rel_err(gpu_items[i].u.to(Device::CPU), cpu_items[i].u) < 1e-5);
      CHECK(test::rel_err(gpu_items[i].v.to(Device::CPU), cpu_items[i].v) < 1e-5);
      CHECK(rel_scalar(gpu_items[i].sigma.item(), cpu_items[i].sigma.item()) < 1e-5);
    }
  }
  // Items on two devices are refused, naming the item.
  std::vector<SnStepItem> mixed = {cpu_items[0], gpu_items[1]};
  CHECK_THROWS_WITH(ops::spectral_norm_step_group(mixed, true), Catch::Contains("item 1"));
}
