// BatchNorm2d with PyTorch's semantics and names: parameters "weight" (gamma, init 1) and
// "bias" (beta, init 0); buffers "running_mean" (init 0), "running_var" (init 1) and
// "num_batches_tracked". momentum 0.1, eps 1e-5 by default; running_var is updated with the
// unbiased batch variance.
//
// num_batches_tracked is an int64 scalar in PyTorch; ember tensors are float32, so it is a
// float32 scalar [] here (exact up to 2^24 = 16.7M training batches; PyTorch's load_state_dict
// converts it to int64 on copy). It is informational only: with a fixed momentum PyTorch
// never reads it either. It is advanced on the device (no host synchronisation).
#pragma once
#include "layers/module.h"

namespace ember {

namespace dist {
class ProcessGroup;
}

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, float momentum = 0.1f, float eps = 1e-5f);
  Tensor forward(const Tensor& x) override;  // x [N, C, H, W] (or [N, C])

  int64_t num_features;
  float momentum, eps;
  Tensor weight, bias;                                  // [C]
  Tensor running_mean, running_var, num_batches_tracked;  // [C], [C], []
  // Data-parallel training with --sync-bn: when set, training-mode statistics are those of the
  // whole group's batch (core/dist/sync_batch_norm.h). Not owned; null = this process's batch.
  dist::ProcessGroup* sync_group = nullptr;
};

}  // namespace ember
