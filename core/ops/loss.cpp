// Op entries for the losses: hinge, binary cross-entropy with logits, cross-entropy.
// Each returns a one-element tensor [] (rank 0, like sum); the backward hands the incoming
// one-element gradient to the kernel, which reads it on the device (no host sync).
#include <cmath>

#include "core/ops/op_util.h"

namespace ember::ops {

namespace {
void check_nonempty(const char* op, const Tensor& x) {
  detail::check_defined(op, x, "input");
  EMBER_CHECK(x.numel() > 0, op << ": input " << x.shape() << " has no elements (the mean is undefined)");
}

// Labels are class indices stored as floats: each must be an integer in [0, K).
// Read on the host (one copy of N floats) so the error can name the offending entry.
void check_labels(const Tensor& labels, int64_t K) {
  std::vector<float> v = labels.to_vector();
  for (size_t i = 0; i < v.size(); ++i) {
    const float l = v[i];
    EMBER_CHECK(std::isfinite(l) && l == std::floor(l) && l >= 0 && l < static_cast<float>(K),
                "cross_entropy: labels[" << i << "] = " << l << " is not a class index (an integer in 0.."
                                         << K - 1 << ")");
  }
}
// Records the node of a loss whose one differentiable input is x: the backward allocates dx
// like x and lets `fill_dx(x, g, dx)` run the backward kernel.
template <class F>
void record_loss(const char* name, Tensor& loss, const Tensor& x, F fill_dx) {
  Tensor sx = x.detach();
  record(name, loss, {x}, [sx, fill_dx](const Tensor& g) {
    Tensor dx = detail::empty_like(sx);
    fill_dx(sx, g, dx);
    return std::vector<Tensor>{dx};
  });
}
}  // namespace

Tensor hinge_loss(const Tensor& x, float sign) {
  check_nonempty("hinge_loss", x);
  EMBER_CHECK(sign == 1.0f || sign == -1.0f, "hinge_loss: sign must be +1 (real) or -1 (fake), got " << sign);
  Tensor loss = Tensor::empty(Shape{}, x.device());
  EMBER_DISPATCH("hinge_loss", x.device(), hinge_forward, x, sign, loss);
  record_loss("hinge_loss", loss, x, [sign](const Tensor& sx, const Tensor& g, Tensor& dx) {
    EMBER_DISPATCH("hinge_loss backward", sx.device(), hinge_backward, sx, sign, g, dx);
  });
  return loss;
}

Tensor bce_with_logits(const Tensor& x, const Tensor& target) {
  detail::check_same_shape("bce_with_logits", x, target);
  check_nonempty("bce_with_logits", x);
  // Targets are labels (0/1 or soft); a gradient for them is not implemented, so refuse
  // rather than silently dropping it.
  EMBER_CHECK(!any_requires_grad({target}),
              "bce_with_logits: target requires grad; gradients flow to the logits only (detach the target)");
  Device d = ember::detail::common_device("bce_with_logits", {&x, &target});
  Tensor loss = Tensor::empty(Shape{}, d);
  EMBER_DISPATCH("bce_with_logits", d, bce_logits_forward, x, target, loss);
  record_loss("bce_with_logits", loss, x, [st = target.detach(), d](const Tensor& sx, const Tensor& g, Tensor& dx) {
    EMBER_DISPATCH("bce_with_logits backward", d, bce_logits_backward, sx, st, g, dx);
  });
  return loss;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels) {
  detail::check_rank("cross_entropy", logits, 2, "logits [N, K]");
  detail::check_rank("cross_entropy", labels, 1, "labels [N]");
  EMBER_CHECK(logits.size(0) == labels.size(0) && logits.size(0) > 0 && logits.size(1) > 0,
              "cross_entropy: logits " << logits.shape() << " and labels " << labels.shape()
                                       << " need the same non-zero N and K > 0");
  Device d = ember::detail::common_device("cross_entropy", {&logits, &labels});
  check_labels(labels, logits.size(1));
  Tensor loss = Tensor::empty(Shape{}, d);
  EMBER_DISPATCH("cross_entropy", d, cross_entropy_forward, logits, labels, loss);
  // Labels are indices: not differentiable, so only the logits are recorded as an input.
  record_loss("cross_entropy", loss, logits, [sy = labels.detach(), d](const Tensor& sl, const Tensor& g, Tensor& dl) {
    EMBER_DISPATCH("cross_entropy backward", d, cross_entropy_backward, sl, sy, g, dl);
  });
  return loss;
}

}  // namespace ember::ops
