// Op entry for batch normalisation, training and eval modes, with autograd.
// gamma / beta may be undefined (no affine transform: ones and zeros are used and get no
// gradient); running statistics are buffers: updated in place in training, never differentiated.
#include "core/ops/op_util.h"

namespace ember::ops {

namespace {

void check_channel_vector(const char* op, const Tensor& t, const char* what, const Tensor& x) {
  if (!t.defined()) return;
  EMBER_CHECK(t.dim() == 1 && t.size(0) == x.size(1),
              op << ": " << what << " " << t.shape() << " should be [" << x.size(1) << "] for input " << x.shape());
}

Tensor channel_fill(const Tensor& x, float value) { return Tensor::full(Shape{x.size(1)}, value, x.device()); }

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                  bool training, float momentum, float eps) {
  const char* op = "batch_norm";
  detail::check_defined(op, x, "input");
  EMBER_CHECK(x.dim() >= 2, op << ": expected input [N, C, *] (rank >= 2), got " << x.shape());
  check_channel_vector(op, gamma, "gamma", x);
  check_channel_vector(op, beta, "beta", x);
  check_channel_vector(op, running_mean, "running_mean", x);
  check_channel_vector(op, running_var, "running_var", x);
  EMBER_CHECK(!(running_mean.defined() && running_mean.requires_grad()) &&
                  !(running_var.defined() && running_var.requires_grad()),
              op << ": running statistics are buffers and must not require grad");
  EMBER_CHECK(eps > 0.0f, op << ": eps must be positive, got " << eps);
  const Device d = ember::detail::common_device(op, {&x, &gamma, &beta, &running_mean, &running_var});

  const Tensor g = gamma.defined() ? gamma : channel_fill(x, 1.0f);
  const Tensor b = beta.defined() ? beta : channel_fill(x, 0.0f);
  Tensor y = detail::empty_like(x);

  if (training) {
    const int64_t per_channel = x.size(1) > 0 ? x.numel() / x.size(1) : 0;
    EMBER_CHECK(per_channel > 1, op << ": training needs more than one value per channel, got input " << x.shape());
    // Without running buffers (track_running_stats=False) the update goes to scratch tensors.
    Tensor rm = running_mean.defined() ? running_mean : channel_fill(x, 0.0f);
    Tensor rv = running_var.defined() ? running_var : channel_fill(x, 1.0f);
    Tensor save_mean = Tensor::empty(Shape{x.size(1)}, d), save_invstd = Tensor::empty(Shape{x.size(1)}, d);
    EMBER_DISPATCH(op, d, batchnorm_forward_train, x, g, b, eps, momentum, rm, rv, y, save_mean, save_invstd);
    Tensor sx = x.detach(), sg = g.detach();
    record(op, y, {x, gamma, beta}, [=](const Tensor& dy) {
      Tensor dx = detail::empty_like(sx), dgamma = detail::empty_like(sg), dbeta = detail::empty_like(sg);
      EMBER_DISPATCH("batch_norm backward", d, batchnorm_backward, sx, dy, sg, save_mean, save_invstd, dx, dgamma,
                     dbeta);
      return std::vector<Tensor>{dx, dgamma, dbeta};
    });
    return y;
  }

  EMBER_CHECK(running_mean.defined() && running_var.defined(),
              op << ": eval mode needs running_mean and running_var, got undefined tensors");
  EMBER_DISPATCH(op, d, batchnorm_forward_eval, x, g, b, running_mean, running_var, eps, y);
  // Eval is a per-channel affine map y = x * s + t with s = gamma / sqrt(rv + eps); its
  // backward reuses the eval kernel: dx = eval(dy) with mean 0 and beta 0 is dy * s.
  // The statistics are copied: a later training step must not change this backward.
  const bool need_gamma = gamma.defined() && gamma.requires_grad();
  const bool need_beta = beta.defined() && beta.requires_grad();
  Tensor rm = running_mean.clone(), rv = running_var.clone(), sx = need_gamma ? x.detach() : Tensor();
  Tensor sg = g.detach();
  record(op, y, {x, gamma, beta}, [=](const Tensor& dy) {
    const Tensor zeros = channel_fill(dy, 0.0f);
    Tensor dx = detail::empty_like(dy), dgamma, dbeta;
    EMBER_DISPATCH("batch_norm backward", d, batchnorm_forward_eval, dy, sg, zeros, zeros, rv, eps, dx);
    if (need_gamma) {  // dgamma = sum over (n, *) of dy * xhat
      Tensor xhat = detail::empty_like(dy), prod = detail::empty_like(dy);
      EMBER_DISPATCH("batch_norm backward", d, batchnorm_forward_eval, sx, channel_fill(dy, 1.0f), zeros, rm, rv, eps,
                     xhat);
      EMBER_DISPATCH("batch_norm backward", d, mul, dy, xhat, prod);
      dgamma = detail::empty_like(sg);
      EMBER_DISPATCH("batch_norm backward", d, bias_grad, prod, dgamma);
    }
    if (need_beta) {
      dbeta = detail::empty_like(sg);
      EMBER_DISPATCH("batch_norm backward", d, bias_grad, dy, dbeta);
    }
    return std::vector<Tensor>{dx, dgamma, dbeta};
  });
  return y;
}

}  // namespace ember::ops
