// GAN losses and the joint real/fake D pass (see losses.h).
#include "models/losses.h"

#include "core/error.h"
#include "core/ops.h"

namespace ember::models {

GanLoss parse_gan_loss(const std::string& s) {
  if (s == "hinge") return GanLoss::Hinge;
  if (s == "bce" || s == "nonsaturating") return GanLoss::NonSaturating;
  EMBER_FAIL("GAN loss: expected \"hinge\" or \"bce\", got \"" << s << "\"");
}

Tensor d_loss_hinge(const Tensor& real, const Tensor& fake) {
  return ops::add(ops::hinge_loss(real, 1.0f), ops::hinge_loss(fake, -1.0f));
}

Tensor g_loss_hinge(const Tensor& fake) { return ops::scale(ops::mean(fake), -1.0f); }

namespace {
Tensor bce_to(const Tensor& logits, float target) {
  return ops::bce_with_logits(logits, Tensor::full(logits.shape(), target, logits.device()));
}
}  // namespace

Tensor d_loss_bce(const Tensor& real, const Tensor& fake) { return ops::add(bce_to(real, 1.0f), bce_to(fake, 0.0f)); }

Tensor g_loss_bce(const Tensor& fake) { return bce_to(fake, 1.0f); }

Tensor d_loss(GanLoss kind, const Tensor& real, const Tensor& fake) {
  return kind == GanLoss::Hinge ? d_loss_hinge(real, fake) : d_loss_bce(real, fake);
}

Tensor g_loss(GanLoss kind, const Tensor& fake) { return kind == GanLoss::Hinge ? g_loss_hinge(fake) : g_loss_bce(fake); }

DLogits discriminate(Module& D, const Tensor& real, const Tensor& fake, bool joint) {
  EMBER_CHECK(real.defined() && fake.defined() && real.dim() == 4 && fake.dim() == 4 &&
                  real.shape()[1] == fake.shape()[1] && real.shape()[2] == fake.shape()[2] &&
                  real.shape()[3] == fake.shape()[3],
              "discriminate: real and fake must be image batches of one size, got "
                  << (real.defined() ? real.shape().str() : "undefined") << " and "
                  << (fake.defined() ? fake.shape().str() : "undefined"));
  if (!joint) return {D(real), D(fake)};
  Tensor logits = D(ops::concat({real, fake}));
  std::vector<Tensor> parts = ops::split(logits, {real.size(0), fake.size(0)});
  return {parts[0], parts[1]};
}

}  // namespace ember::models
