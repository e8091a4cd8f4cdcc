// GAN losses on D's logits, built from ops:: (mean over the batch):
//   hinge (SAGAN):  L_D = mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))),   L_G = -mean(D(G(z)))
//   non-saturating BCE (DCGAN):  L_D = BCE(D(x), 1) + BCE(D(G(z)), 0),      L_G = BCE(D(G(z)), 1)
//
// The D step and spectral norm. discriminate() runs real and fake through D as ONE concatenated
// batch (ops::concat, then ops::split of the logits), so each D step advances every spectral-norm
// power iteration exactly once, as in the official SAGAN code. For a discriminator without
// BatchNorm (both SAGAN forms) the logits are exactly those of two separate passes except for
// that: two passes would advance u, v twice and normalise the fake pass with the newer sigma.
// With BatchNorm in D (DCGAN) a joint batch also changes the batch statistics (real and fake are
// normalised together); pass joint = false there to get PyTorch's DCGAN example's two passes.
#pragma once
#include <string>

#include "core/tensor.h"
#include "layers/module.h"

namespace ember::models {

enum class GanLoss { Hinge, NonSaturating };
GanLoss parse_gan_loss(const std::string& s);  // "hinge" | "bce"

Tensor d_loss_hinge(const Tensor& real_logits, const Tensor& fake_logits);
Tensor g_loss_hinge(const Tensor& fake_logits);
Tensor d_loss_bce(const Tensor& real_logits, const Tensor& fake_logits);
Tensor g_loss_bce(const Tensor& fake_logits);
Tensor d_loss(GanLoss kind, const Tensor& real_logits, const Tensor& fake_logits);
Tensor g_loss(GanLoss kind, const Tensor& fake_logits);

struct DLogits {
  Tensor real, fake;  // [B_real, 1], [B_fake, 1]
};
// D's logits for a real and a fake batch (see above). fake is typically G(z).detach() in the D
// step and G(z) in the G step.
DLogits discriminate(Module& D, const Tensor& real, const Tensor& fake, bool joint = true);

}  // namespace ember::models
