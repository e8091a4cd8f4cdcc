// Optimisers and the exponential moving average of weights. The arithmetic is in the optim
// kernels (kernels/optim.inc: one multi-tensor launch per step on CUDA); these classes hold the
// state and run the update under NoGradGuard.
//
// Optimisers are built from named parameters (Module::named_parameters()) so that their state
// is saved under the parameter names ("m.fc.weight_orig", ...). They hold tensor HANDLES:
// build them after Module::to(device). Parameters whose gradient is undefined at step() are
// skipped (their state is not advanced), as PyTorch skips params whose .grad is None; the step
// counter is shared (GAN parameters all receive gradients every step).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "layers/module.h"

namespace ember {

class Optimizer {
 public:
  explicit Optimizer(const StateDict& named_params);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();  // drops every parameter's gradient

  // Tensor state ("m.<param>", ...), for checkpoints; the step count is separate (an integer).
  virtual StateDict state_dict() const = 0;
  // Strict: every entry present with the right shape, nothing extra.
  void load_state_dict(const StateDict& sd);
  void check_state_dict(const StateDict& sd) const;  // load_state_dict's checks alone
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  float lr = 0;  // the current learning rate (set from the options; change it for schedules)

 protected:
  StateDict params_;  // (name, handle)
  int64_t steps_ = 0;
  StateDict zeros_like_params(const std::string& prefix) const;
};

struct AdamOptions {
  float lr = 1e-4f;
  float beta1 = 0.0f;  // SAGAN's choice (the paper: beta1 = 0, beta2 = 0.9)
  float beta2 = 0.9f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
};

class Adam : public Optimizer {
 public:
  Adam(const StateDict& named_params, const AdamOptions& opt = {});
  void step() override;
  StateDict state_dict() const override;  // "m.<name>", "v.<name>"
  AdamOptions options;

 private:
  StateDict m_, v_;
};

struct SGDOptions {
  float lr = 1e-2f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;
};

class SGD : public Optimizer {
 public:
  SGD(const StateDict& named_params, const SGDOptions& opt = {});
  void step() override;
  StateDict state_dict() const override;  // "momentum_buffer.<name>" (empty without momentum)
  SGDOptions options;

 private:
  StateDict bufs_;
};

// EMA of a model's weights kept in a second instance of the same architecture ("shadow"):
// update() does shadow.p = decay * shadow.p + (1 - decay) * p for every parameter, and copies
// every buffer (BatchNorm statistics, spectral-norm u, v) as they are, as BigGAN's EMA does.
// The shadow is an ordinary module: evaluate it, save its state_dict.
class EMA {
 public:
  // Copies model's state into shadow first (same architecture required).
  EMA(const Module& model, Module& shadow, float decay = 0.999f);
  void update();
  float decay;

 private:
  const Module& model_;
  Module& shadow_;
};

}  // namespace ember
