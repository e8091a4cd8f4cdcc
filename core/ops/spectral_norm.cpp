// Op entry for spectral normalisation (torch.nn.utils.spectral_norm semantics): the power
// iteration in training mode, sigma from the stored u, v in eval mode (spectral_norm_step), w / sigma
// as the output with an autograd node whose gradient flows to w only (spectral_normalized).
// Consumers that apply 1/sigma themselves (ops::self_attention_block) call the step alone;
// spectral_norm_step_group runs the step of many weights at once. The helpers of the layers'
// consumers (linear_sn, conv2d_sn, conv_transpose2d_sn; core/ops/sn_consumer.h) are here too.
#include <atomic>

#include "core/ops/sn_consumer.h"
#include "kernels/spectral_norm_layout.h"

namespace ember::ops {

namespace {

// Checks the arguments shared by the entries below; returns dim made non-negative.
int check_spectral_norm_args(const char* op, const Tensor& w, int dim, const Tensor& u, const Tensor& v,
                             const Tensor& sigma) {
  detail::check_defined(op, w, "weight");
  detail::check_defined(op, u, "u");
  detail::check_defined(op, v, "v");
  detail::check_defined(op, sigma, "sigma");
  EMBER_CHECK(w.dim() >= 2, op << ": weight must have rank >= 2, got " << w.shape());
  EMBER_CHECK(dim >= -w.dim() && dim < w.dim(),
              op << ": dim " << dim << " out of range for weight " << w.shape());
  if (dim < 0) dim += w.dim();
  const SnLayout l = sn_layout(w.shape(), dim);
  EMBER_CHECK(w.numel() > 0, op << ": weight " << w.shape() << " has no elements");
  EMBER_CHECK(u.dim() == 1 && u.size(0) == l.rows,
              op << ": u must be [" << l.rows << "] (w.size(" << dim << ") of " << w.shape() << "), got " << u.shape());
  EMBER_CHECK(v.dim() == 1 && v.size(0) == l.cols(),
              op << ": v must be [" << l.cols() << "] (numel / w.size(" << dim << ") of " << w.shape() << "), got "
                 << v.shape());
  EMBER_CHECK(sigma.numel() == 1, op << ": sigma_out must hold one element, got " << sigma.shape());
  EMBER_CHECK(!u.requires_grad() && !v.requires_grad() && !sigma.requires_grad(),
              op << ": u, v and sigma_out are buffers and must not require grad");
  return dim;
}

// W / sigma tensors written by spectral_normalized, per device (spectral_normalized_count).
std::atomic<int64_t> g_formed[2];

}  // namespace

void spectral_norm_step(const Tensor& w, int dim, Tensor& u, Tensor& v, Tensor& sigma_out, bool training, float eps) {
  const char* op = "spectral_norm";
  dim = check_spectral_norm_args(op, w, dim, u, v, sigma_out);
  EMBER_CHECK(eps > 0.0f, op << ": eps must be positive, got " << eps);
  const Device d = ember::detail::common_device(op, {&w, &u, &v, &sigma_out});
  if (training) {
    EMBER_DISPATCH(op, d, spectral_norm_power_iteration, w, dim, eps, u, v, sigma_out);
  } else {
    EMBER_DISPATCH(op, d, spectral_norm_sigma, w, dim, u, v, sigma_out);
  }
}

void spectral_norm_step_group(const std::vector<SnStepItem>& items, bool training) {
  const char* op = "spectral_norm_step_group";
  if (items.empty()) return;
  std::vector<SnStepItem> checked = items;
  Device d = Device::CPU;
  for (size_t i = 0; i < checked.size(); ++i) {
    SnStepItem& it = checked[i];
    const std::string name = std::string(op) + " (item " + std::to_string(i) + ")";
    it.dim = check_spectral_norm_args(name.c_str(), it.w, it.dim, it.u, it.v, it.sigma);
    EMBER_CHECK(it.eps > 0.0f, name << ": eps must be positive, got " << it.eps);
    const Device di = ember::detail::common_device(name.c_str(), {&it.w, &it.u, &it.v, &it.sigma});
    if (i == 0) d = di;
    EMBER_CHECK(di == d, name << ": on " << di << " but item 0 is on " << d << " (one device for all)");
  }
  EMBER_DISPATCH(op, d, spectral_norm_step_group, checked, training);
}

Tensor spectral_normalized(const Tensor& w, int dim, const Tensor& u, const Tensor& v, const Tensor& sigma) {
  const char* op = "spectral_normalized";
  dim = check_spectral_norm_args(op, w, dim, u, v, sigma);
  const Device d = ember::detail::common_device(op, {&w, &u, &v, &sigma});
  Tensor out = detail::empty_like(w);
  EMBER_DISPATCH(op, d, spectral_norm_scale, w, sigma, out);
  g_formed[d == Device::CPU ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
  if (any_requires_grad({w})) {
    // u, v and sigma are overwritten in place by the next training forward (a discriminator
    // runs on real and fake batches before one backward): keep this step's values, as PyTorch
    // does by cloning u and v after the power iteration.
    Tensor su = u.clone(), sv = v.clone(), ss = sigma.clone(), sw = w.detach();
    record(op, out, {w}, [sw, su, sv, ss, dim](const Tensor& g) {
      Tensor dw = detail::empty_like(sw);
      Device gd = ember::detail::common_device("spectral_norm backward", {&sw, &g});
      EMBER_DISPATCH("spectral_norm backward", gd, spectral_norm_backward, sw, dim, su, sv, ss, g, dw);
      return std::vector<Tensor>{dw};
    });
  }
  return out;
}

int64_t spectral_normalized_count(Device device) {
  return g_formed[device == Device::CPU ? 0 : 1].load(std::memory_order_relaxed);
}

Tensor spectral_norm(const Tensor& w, int dim, Tensor& u, Tensor& v, Tensor& sigma_out, bool training, float eps) {
  spectral_norm_step(w, dim, u, v, sigma_out, training, eps);
  return spectral_normalized(w, dim, u, v, sigma_out);
}

}  // namespace ember::ops

namespace ember::ops::detail {

int check_sn_scale(const char* op, const Tensor& w, const SnScale& sn) {
  const int dim = check_spectral_norm_args(op, w, sn.dim, sn.u, sn.v, sn.sigma);
  ember::detail::common_device(op, {&w, &sn.u, &sn.v, &sn.sigma});
  return dim;
}

SnSaved save_sn(const Tensor& w, int dim, const SnScale& sn) {
  return SnSaved{w.detach(), dim, sn.u.clone(), sn.v.clone(), sn.sigma.clone()};
}

void sn_epilogue(const char* op, Tensor& z, const Tensor& sigma, const Tensor& b) {
  EMBER_DISPATCH(op, z.device(), sigma_bias_add, z, sigma, b, z);
}

Tensor sn_scale_grad(const char* op, const Tensor& dy, const Tensor& sigma) {
  Tensor out = empty_like(dy);
  EMBER_DISPATCH(op, dy.device(), sigma_bias_add, dy, sigma, Tensor(), out);
  return out;
}

Tensor sn_weight_grad(const char* op, const SnSaved& s, const Tensor& g) {
  Tensor dw = empty_like(s.w);
  EMBER_DISPATCH(op, s.w.device(), spectral_norm_backward, s.w, s.dim, s.u, s.v, s.sigma, g, dw);
  return dw;
}

Tensor bias_grad_of(const char* op, const Tensor& dy) {
  Tensor db = Tensor::empty(Shape{dy.size(1)}, dy.device());
  EMBER_DISPATCH(op, dy.device(), bias_grad, dy, db);
  return db;
}

}  // namespace ember::ops::detail
