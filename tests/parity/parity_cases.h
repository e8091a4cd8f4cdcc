// PyTorch parity cases, shared by tests/test_parity.cpp (CPU) and tests/cuda/test_parity.cpp
// (CUDA): ember's layers, models, losses and Adam against the golden files written by
// tests/parity/make_golden.py (PyTorch, float64 arithmetic on float32 weights and inputs;
// committed under tests/golden/, so no PyTorch is needed to run them). Every tensor of a case
// is compared: output, every parameter gradient, input gradients, every buffer after the
// forward (spectral-norm u and v, BatchNorm running statistics) and, where present, the
// eval-mode output.
//
// Tolerances are on ||ember - ref|| / ||ref|| per tensor and cover ember's float32 arithmetic
// (errors measured on CPU when these were written, in brackets):
//   single layers and losses 1e-5 [<= 7e-7]; whole models 1e-4 [<= 1.1e-5: a dozen layers,
//   BatchNorm over small batches, biases whose gradient partly cancels]; three Adam steps 1e-5
//   [<= 1.4e-6]. On CUDA they hold with TF32 off (the CUDA test switches it off).
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/safetensors.h"
#include "layers/batch_norm2d.h"
#include "layers/conv2d.h"
#include "layers/conv_transpose2d.h"
#include "layers/linear.h"
#include "layers/optim.h"
#include "layers/self_attention.h"
#include "models/dcgan.h"
#include "models/losses.h"
#include "models/sagan.h"
#include "models/sagan_resnet.h"

namespace ember::parity {

inline SafetensorsFile golden(const std::string& name) {
  return load_safetensors(std::string(EMBER_SOURCE_DIR) + "/tests/golden/" + name + ".safetensors");
}

// Entries "prefix<name>" of the file as (name, tensor), prefix stripped.
inline StateDict with_prefix(const SafetensorsFile& f, const std::string& prefix) {
  StateDict sd;
  for (const std::string& n : f.names)
    if (n.compare(0, prefix.size(), prefix) == 0) sd.emplace_back(n.substr(prefix.size()), f.get(n));
  return sd;
}

inline double norm(const Tensor& t) {
  double s = 0;
  for (float v : t.to_vector()) s += static_cast<double>(v) * v;
  return std::sqrt(s);
}

// ||got - ref|| / max(||ref||, floor) <= tol.
inline void expect_close(const std::string& what, const Tensor& got, const Tensor& ref, double tol, double floor = 0) {
  INFO(what << ": ember " << (got.defined() ? got.shape().str() : "undefined") << " vs PyTorch " << ref.shape());
  REQUIRE(got.defined());
  REQUIRE(got.shape() == ref.shape());
  double diff = 0;
  std::vector<float> a = got.to_vector(), b = ref.to_vector();
  for (size_t i = 0; i < a.size(); ++i) diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  const double err = std::isfinite(diff) ? std::sqrt(diff) / std::max(norm(ref), floor) : INFINITY;
  INFO("relative error " << err << " (tolerance " << tol << (floor > 0 ? ", relative to the case's largest gradient" : "")
                         << ")");
  CHECK(err <= tol);
}

// Some exact gradients are 0: a bias feeding BatchNorm (the mean subtraction cancels it) or the
// bias of the attention keys (softmax is invariant to a constant per query). The float64
// reference is then rounding noise (~1e-17) and ember's float32 value ~1e-9: such a gradient
// is measured against the largest gradient norm of the case instead of its own norm.
inline double zero_grad_floor(const Tensor& ref, double largest) { return norm(ref) <= 1e-6 * largest ? largest : 0.0; }

using Forward = std::function<Tensor(Module&, const std::map<std::string, Tensor>&)>;

inline Tensor fwd_x(Module& m, const std::map<std::string, Tensor>& in) { return m(in.at("x")); }
inline Tensor fwd_z(Module& m, const std::map<std::string, Tensor>& in) { return m(in.at("z")); }

// Loads the golden state into m (strict: the names must be PyTorch's), runs forward in training
// mode and backward with the golden output gradient, and compares every tensor of the case.
inline void check_case(const std::string& name, Module& m, const Forward& fwd, double tol, Device device) {
  SafetensorsFile g = golden(name);
  m.load_state_dict(with_prefix(g, "sd."), true);
  m.to(device);
  m.train();
  std::map<std::string, Tensor> inputs;
  for (auto& kv : with_prefix(g, "in.")) {
    Tensor t = kv.second.to(device);
    t.requires_grad_(true);
    inputs[kv.first] = t;
  }
  Tensor out = fwd(m, inputs);
  expect_close(name + " output", out, g.get("out"), tol);
  out.backward(g.get("grad_out").to(device));

  std::set<std::string> expected;
  double largest = 0;
  for (auto& kv : with_prefix(g, "grad.")) {
    expected.insert(kv.first);
    largest = std::max(largest, norm(kv.second));
  }
  std::set<std::string> seen;
  for (auto& kv : m.named_parameters()) {
    seen.insert(kv.first);
    INFO("parameter " << kv.first);
    REQUIRE(expected.count(kv.first));
    Tensor ref = g.get("grad." + kv.first);
    expect_close(name + " grad of " + kv.first, kv.second.grad(), ref, tol, zero_grad_floor(ref, largest));
  }
  CHECK(seen == expected);
  for (auto& kv : inputs) expect_close(name + " grad of input " + kv.first, kv.second.grad(), g.get("grad_in." + kv.first), tol);
  for (auto& kv : m.named_buffers())
    expect_close(name + " buffer " + kv.first + " after forward", kv.second, g.get("after." + kv.first), tol);

  if (g.contains("out_eval")) {
    std::map<std::string, Tensor> before;
    for (auto& kv : m.named_buffers()) before[kv.first] = kv.second.clone();
    m.eval();
    NoGradGuard ng;
    expect_close(name + " eval output", fwd(m, inputs), g.get("out_eval"), tol);
    // eval must not advance the power iteration or the running statistics
    for (auto& kv : m.named_buffers())
      expect_close(name + " buffer " + kv.first + " unchanged by eval", kv.second, before.at(kv.first), 0.0);
  }
}

inline constexpr double kLayerTol = 1e-5;
inline constexpr double kModelTol = 1e-4;
inline constexpr double kAdamTol = 1e-5;


// ---- the cases (each runs on `device`; the golden files hold CPU tensors) ----------------------

inline void sn_layers(Device device) {
  Generator gen(1);
  auto lin = spectral_norm(std::make_shared<Linear>(7, 5, gen), gen);
  check_case("sn_linear", *lin, fwd_x, kLayerTol, device);
  auto conv = spectral_norm(std::make_shared<Conv2d>(3, 4, 3, 2, 1, gen), gen);
  check_case("sn_conv", *conv, fwd_x, kLayerTol, device);
  auto convt = spectral_norm(std::make_shared<ConvTranspose2d>(4, 3, 4, 2, 1, gen), gen);
  check_case("sn_conv_transpose", *convt, fwd_x, kLayerTol, device);
}

inline void batch_norm(Device device) {
  BatchNorm2d bn(5);
  check_case("batch_norm", bn, fwd_x, kLayerTol, device);
}

inline void attention(Device device) {
  Generator gen(2);
  SelfAttention a(16, AttentionVariant::Article, gen);
  check_case("attention_article", a, fwd_x, kLayerTol, device);
  SelfAttention b(16, AttentionVariant::Official, gen);
  check_case("attention_official", b, fwd_x, kLayerTol, device);
}

template <class G_t, class D_t, class Config>
void model_pair(const std::string& name, const Config& c, Generator& gen, Device device) {
  G_t G(c, gen);
  D_t D(c, gen);
  check_case(name + "_G", G, fwd_z, kModelTol, device);
  check_case(name + "_D", D, fwd_x, kModelTol, device);
}

inline void whole_models(Device device) {
  Generator gen(3);
  models::SaganConfig sc;
  sc.resolution = 32, sc.width = 1.0f / 16, sc.z_dim = 8;
  model_pair<models::SaganGenerator, models::SaganDiscriminator>("sagan", sc, gen, device);
  models::SaganResNetConfig rc;
  rc.resolution = 32, rc.base = 8, rc.z_dim = 8;
  model_pair<models::SaganResNetGenerator, models::SaganResNetDiscriminator>("sagan_resnet", rc, gen, device);
  models::DcganConfig dc;
  dc.resolution = 32, dc.base = 4, dc.z_dim = 8;
  model_pair<models::DcganGenerator, models::DcganDiscriminator>("dcgan", dc, gen, device);
}

inline void losses(Device device) {
  SafetensorsFile g = golden("losses");
  for (const std::string kind : {"hinge", "bce"}) {
    const auto kd = models::parse_gan_loss(kind);
    Tensor real = g.get("in.real", device), fake = g.get("in.fake", device);
    real.requires_grad_(true), fake.requires_grad_(true);
    Tensor ld = models::d_loss(kd, real, fake);
    ld.backward();
    expect_close("D loss " + kind, ld.reshape({1}), g.get("out.d_" + kind), kLayerTol);
    expect_close("D loss " + kind + " grad real", real.grad(), g.get("grad.d_" + kind + ".real"), kLayerTol);
    expect_close("D loss " + kind + " grad fake", fake.grad(), g.get("grad.d_" + kind + ".fake"), kLayerTol);
    Tensor fake2 = g.get("in.fake", device);
    fake2.requires_grad_(true);
    Tensor lg = models::g_loss(kd, fake2);
    lg.backward();
    expect_close("G loss " + kind, lg.reshape({1}), g.get("out.g_" + kind), kLayerTol);
    expect_close("G loss " + kind + " grad fake", fake2.grad(), g.get("grad.g_" + kind + ".fake"), kLayerTol);
  }
}

// Three alternating D/G steps exactly as the training loop runs them: D on real and G(z).detach()
// as one concatenated batch with the hinge loss, then G through D; Adam (TTUR 1e-4 / 4e-4,
// betas 0 / 0.9). The losses of each step and every weight and buffer after three steps are
// compared. (Adam's first steps move each weight by about lr * sign(g): the test is well posed
// only because the article G has no dead parameters, see models/sagan.h and self_attention.h.)
inline void adam_steps(Device device) {
  SafetensorsFile g = golden("adam_steps");
  models::SaganConfig c;
  c.resolution = 32, c.width = 1.0f / 16, c.z_dim = 8;
  Generator gen(4);
  models::SaganGenerator G(c, gen);
  models::SaganDiscriminator D(c, gen);
  G.load_state_dict(with_prefix(g, "sd.G."));
  D.load_state_dict(with_prefix(g, "sd.D."));
  G.to(device), D.to(device);
  G.train(), D.train();
  AdamOptions og, od;
  og.lr = 1e-4f, od.lr = 4e-4f;
  og.beta1 = od.beta1 = 0.0f;
  og.beta2 = od.beta2 = 0.9f;
  Adam opt_G(G.named_parameters(), og), opt_D(D.named_parameters(), od);
  const int steps = std::stoi(g.metadata.at("steps"));
  for (int s = 0; s < steps; ++s) {
    const std::string k = std::to_string(s);
    Tensor fake = G(g.get("in.z_d." + k, device)).detach();
    models::DLogits l = models::discriminate(D, g.get("in.real." + k, device), fake);
    Tensor ld = models::d_loss_hinge(l.real, l.fake);
    opt_D.zero_grad();
    ld.backward();
    opt_D.step();
    Tensor lg = models::g_loss_hinge(D(G(g.get("in.z_g." + k, device))));
    opt_G.zero_grad();
    lg.backward();
    opt_G.step();
    expect_close("D loss, step " + k, ld.reshape({1}), g.get("out.loss_d." + k), kAdamTol);
    expect_close("G loss, step " + k, lg.reshape({1}), g.get("out.loss_g." + k), kAdamTol);
  }
  for (auto& kv : G.state_dict()) expect_close("G." + kv.first + " after Adam", kv.second, g.get("after.G." + kv.first), kAdamTol);
  for (auto& kv : D.state_dict()) expect_close("D." + kv.first + " after Adam", kv.second, g.get("after.D." + kv.first), kAdamTol);
}

}  // namespace ember::parity
