// BatchNorm2d layer (see batch_norm2d.h).
#include "layers/batch_norm2d.h"

#include "core/autograd.h"
#include "core/dist/sync_batch_norm.h"
#include "core/ops.h"

namespace ember {

BatchNorm2d::BatchNorm2d(int64_t c, float m, float e) : num_features(c), momentum(m), eps(e) {
  EMBER_CHECK(c > 0, "BatchNorm2d: num_features must be positive, got " << c);
  weight = Tensor::full(Shape{c}, 1.0f);
  bias = Tensor::zeros(Shape{c});
  running_mean = Tensor::zeros(Shape{c});
  running_var = Tensor::full(Shape{c}, 1.0f);
  num_batches_tracked = Tensor::zeros(Shape{});
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
  register_buffer("num_batches_tracked", &num_batches_tracked);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  EMBER_CHECK(x.defined() && x.dim() >= 2 && x.size(1) == num_features,
              "BatchNorm2d(" << num_features << "): input must be [N, " << num_features << ", ...], got "
                             << (x.defined() ? x.shape().str() : "undefined"));
  Tensor y = is_training() && sync_group
                 ? dist::sync_batch_norm(*sync_group, x, weight, bias, running_mean, running_var, momentum, eps)
                 : ops::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
  if (is_training()) {
    NoGradGuard ng;
    num_batches_tracked.copy_(ops::add_scalar(num_batches_tracked, 1.0f));
  }
  return y;
}

}  // namespace ember
