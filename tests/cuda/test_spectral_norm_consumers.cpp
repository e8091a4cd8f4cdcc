// The spectral-normalised consumers on CUDA against the CPU reference: the sigma_bias_add kernel
// (every launch path: flat, per-plane float4, per-plane scalar, misaligned, no bias, in place),
// ops::linear_sn / conv2d_sn / conv_transpose2d_sn in value and gradients, and SAGAN training
// steps that never form W / sigma (ops::spectral_normalized_count; the op profiler shows the
// epilogue ran instead). Outputs start as NaN.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/profile.h"
#include "kernels/kernels.h"
#include "layers/optim.h"
#include "models/losses.h"
#include "models/sagan.h"
#include "tests/cuda/compare.h"
#include "tests/harness.h"

using namespace ember;
using ember::test::gpu::check_close;
using ember::test::gpu::kFp32Tol;

TEST_CASE("sn consumers: sigma_bias_add on CUDA matches the CPU on every launch path", "[sn_consumer][cuda]") {
  // [N, C] and 3x3 planes: the flat kernel (inner < 128); 16x16: per plane with float4; 13x13:
  // per plane, scalar (inner % 4 != 0); a misaligned input: per plane, scalar by alignment.
  const Tensor sigma = Tensor::full(Shape{1}, 1.37f);
  const Tensor sigma_g = sigma.to(Device::CUDA);
  uint64_t seed = 7600;
  for (const Shape& sh : {Shape{5, 7}, Shape{2, 3, 3, 3}, Shape{2, 3, 16, 16}, Shape{2, 3, 13, 13}}) {
    for (bool misaligned : {false, true}) {
      CAPTURE(sh, misaligned);
      Tensor x = test::random_tensor(sh, ++seed), b = test::random_tensor(Shape{sh[1]}, ++seed);
      Tensor xg = misaligned ? test::gpu::misaligned_cuda(x) : x.to(Device::CUDA);
      Tensor bg = b.to(Device::CUDA);
      Tensor want = Tensor::empty(sh), want_nb = Tensor::empty(sh);
      cpu::sigma_bias_add(x, sigma, b, want);
      cpu::sigma_bias_add(x, sigma, Tensor(), want_nb);

      Tensor y = test::gpu::nan_tensor(sh, Device::CUDA);
      cuda::sigma_bias_add(xg, sigma_g, bg, y);
      check_close("x / sigma + b", y, want, kFp32Tol);
      Tensor y_nb = test::gpu::nan_tensor(sh, Device::CUDA);  // the flat map, 4 per thread, tail
      cuda::sigma_bias_add(xg, sigma_g, Tensor(), y_nb);
      check_close("x / sigma", y_nb, want_nb, kFp32Tol);
      Tensor z = xg.clone();  // in place
      cuda::sigma_bias_add(z, sigma_g, bg, z);
      check_close("in place", z, want, kFp32Tol);
    }
  }
}

TEST_CASE("sn consumers: linear_sn conv2d_sn and conv_transpose2d_sn on CUDA match the CPU",
          "[sn_consumer][cuda][library][cublas][cudnn]") {
  test::gpu::Tf32Scope fp32(false);
  struct Case {
    const char* name;
    Shape x, w;
    int dim;
    int kind;  // 0 linear, 1 conv2d (stride 2, pad 1), 2 conv_transpose2d (stride 2, pad 1)
  };
  const Case cases[] = {{"linear", Shape{6, 9}, Shape{5, 9}, 0, 0},
                        {"conv2d", Shape{2, 3, 9, 7}, Shape{4, 3, 3, 3}, 0, 1},
                        {"conv_transpose2d", Shape{2, 4, 5, 3}, Shape{4, 3, 4, 4}, 1, 2}};
  uint64_t seed = 7700;
  for (const Case& k : cases) {
    CAPTURE(k.name);
    const int64_t rows = k.w[k.dim], out = k.kind == 2 ? k.w[1] : k.w[0];
    Tensor x = test::random_tensor(k.x, ++seed), w = test::random_tensor(k.w, ++seed);
    Tensor b = test::random_tensor(Shape{out}, ++seed);
    ops::SnScale s{k.dim, test::random_unit(rows, ++seed), test::random_unit(w.numel() / rows, ++seed), Tensor::zeros(Shape{1})};
    ops::spectral_norm_step(w, k.dim, s.u, s.v, s.sigma, true);
    auto run = [&](Device d, Tensor& dx, Tensor& dw, Tensor& db) {
      Tensor xd = x.to(d).requires_grad_(true), wd = w.to(d).requires_grad_(true), bd = b.to(d).requires_grad_(true);
      ops::SnScale sd{k.dim, s.u.to(d), s.v.to(d), s.sigma.to(d)};
      Tensor y = k.kind == 0   ? ops::linear_sn(xd, wd, bd, sd)
                 : k.kind == 1 ? ops::conv2d_sn(xd, wd, bd, 2, 1, sd)
                               : ops::conv_transpose2d_sn(xd, wd, bd, 2, 1, 0, sd);
      ops::sum(ops::mul(y, test::random_tensor(y.shape(), 7799).to(d))).backward();
      dx = xd.grad(), dw = wd.grad(), db = bd.grad();
      return y;
    };
    Tensor dxc, dwc, dbc, dxg, dwg, dbg;
    Tensor yc = run(Device::CPU, dxc, dwc, dbc), yg = run(Device::CUDA, dxg, dwg, dbg);
    check_close("y", yg, yc, kFp32Tol);
    check_close("dx", dxg, dxc, kFp32Tol);
    check_close("dw", dwg, dwc, kFp32Tol);
    check_close("db", dbg, dbc, kFp32Tol);
  }
}

TEST_CASE("sn consumers: a SAGAN D step and G step on CUDA write no W / sigma", "[sn_consumer][cuda][library][cublas][cudnn]") {
  // A D step (real and fake through D, as the trainer runs them) and a G step with Adam, on the
  // smallest models: every spectral-normalised Linear, Conv2d, ConvTranspose2d and attention
  // projection runs forward and backward, none calls ops::spectral_normalized (its counter of CUDA
  // W / sigma tensors stays put); the profiler shows the epilogue and the grouped power iteration
  // ran instead. Seconds under the emulator (a GPU could run many steps: the counter does not
  // change from step to step); under the sanitizers G's forward and the D step only.
  models::SaganConfig c;
  c.resolution = 32, c.width = 1.0f / 16, c.z_dim = 8;
  Generator gen(21);
  models::SaganGenerator G(c, gen);
  models::SaganDiscriminator D(c, gen);
  G.to(Device::CUDA), D.to(Device::CUDA);
  Adam opt_G(G.named_parameters()), opt_D(D.named_parameters());
  Tensor real = test::random_tensor(Shape{2, 3, 32, 32}, 7801).to(Device::CUDA);
  const int64_t before = ops::spectral_normalized_count(Device::CUDA);
  profile::enable();
  profile::reset();
  Tensor z = randn(Shape{2, 8}, gen).to(Device::CUDA);
  Tensor fake = G(z);
  models::DLogits l = models::discriminate(D, real, fake.detach());
  opt_D.zero_grad();
  models::d_loss_hinge(l.real, l.fake).backward();
  opt_D.step();
  if (!test::gpu::kSanitized) {
    opt_G.zero_grad();
    models::g_loss_hinge(D(fake)).backward();
    opt_G.step();
  }
  const std::string table = profile::report();
  profile::disable();
  profile::reset();
  INFO(table);
  CHECK(ops::spectral_normalized_count(Device::CUDA) == before);
  CHECK(table.find("spectral_norm_scale") == std::string::npos);
  CHECK(table.find("sigma_bias_add") != std::string::npos);
  CHECK(table.find("spectral_norm_step_group") != std::string::npos);
  // The counter counts CUDA W / sigma tensors: the composed path adds one.
  SpectralNorm& sn = G.fc->spectral_norm_state();
  ops::spectral_normalized(G.fc->weight, sn.dim, sn.u, sn.v, sn.sigma);
  CHECK(ops::spectral_normalized_count(Device::CUDA) == before + 1);
}
