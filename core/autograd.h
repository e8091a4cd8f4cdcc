// Define-by-run autograd, in the spirit of micrograd and PyTorch.
//
// Every differentiable op that runs while grad mode is on and has an input that requires a
// gradient gives its output a Node: the inputs it read, and a backward function that maps the
// gradient of the output to the gradients of the inputs. backward() sorts the nodes reachable
// from the root topologically once, then calls each node's backward exactly once with the sum
// of the gradients that reached its output.
//
// THE GRADIENT RULE (stated once, used everywhere):
//   * A Node's backward function ASSIGNS: it returns freshly computed input gradients and never
//     touches any .grad field. (Kernels named *_backward write their outputs, they do not add.)
//   * The engine ACCUMULATES: gradients from several uses of a tensor are summed, and a leaf's
//     .grad is added to across backward() calls until zero_grad(), as in PyTorch.
//
// After backward the graph is released (saved tensors freed); running backward again through
// it is an error, as is calling backward on a non-scalar without an explicit gradient.
// Nodes must never hold their own output (that would be a cycle): save outputs as detach().
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ember {

struct Node {
  using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;
  std::string name;               // the op, for error messages
  std::vector<Tensor> inputs;     // the op's tensor inputs, in backward's return order
  BackwardFn backward;            // returns one gradient per input (undefined = none)
  bool released = false;
};

// Is grad mode on (no NoGradGuard alive on this thread)?
bool grad_enabled();

// RAII: no graph is recorded while one is alive (inference, optimizer updates).
// Is this thread running backward functions (inside run_backward)? The op profiler's phase.
bool in_backward();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// For ops: if grad mode is on and any input requires a gradient, attaches a node to `out`
// (and marks it requires_grad). Returns whether it did.
bool record(const char* name, Tensor& out, std::vector<Tensor> inputs, Node::BackwardFn backward);

// Does any of these require a gradient (with grad mode on)?
bool any_requires_grad(const std::vector<Tensor>& ts);

// The engine; Tensor::backward calls it.
void run_backward(const Tensor& root, const Tensor& grad);

// ---- gradient-ready hooks (PyTorch's post-accumulate-grad hooks, which DDP overlaps with) ----
// A callback on a leaf that requires a gradient, called by backward() once the leaf's gradient
// for that backward is complete. The guarantee:
//   * WHEN: after the last contribution of this backward has been added to leaf.grad() (so
//     .grad() holds the final value, accumulated onto any earlier .grad() as usual), before
//     backward() returns, and while backward still walks the rest of the graph (that is the
//     point: work on this gradient can start early). Exactly once per backward() in which the
//     leaf received a gradient; never for a leaf that got none (not reached, or every path
//     returned no gradient). A leaf used several times fires once, after its last use.
//   * THREAD: the thread that called backward(), with grad mode off and in_backward() true.
//   * ORDER: leaves in the order their gradients complete (roughly reverse forward order; not
//     a stable contract beyond that); the hooks of one leaf in the order they were added.
//   * A hook may read or copy .grad() and the leaf; it must not call backward() or change which
//     leaves exist. An exception from a hook aborts the backward and propagates.
using GradReadyHook = std::function<void(const Tensor& leaf)>;

// Removes its hook when destroyed (or on reset()); movable, not copyable. Holds the leaf.
class GradReadyHookHandle {
 public:
  GradReadyHookHandle() = default;
  GradReadyHookHandle(Tensor leaf, int64_t id) : leaf_(std::move(leaf)), id_(id) {}
  ~GradReadyHookHandle() { reset(); }
  GradReadyHookHandle(GradReadyHookHandle&& o) noexcept : leaf_(std::move(o.leaf_)), id_(o.id_) { o.id_ = 0; }
  GradReadyHookHandle& operator=(GradReadyHookHandle&& o) noexcept;
  GradReadyHookHandle(const GradReadyHookHandle&) = delete;
  GradReadyHookHandle& operator=(const GradReadyHookHandle&) = delete;
  void reset();

 private:
  Tensor leaf_;
  int64_t id_ = 0;
};

// Adds `hook` to `leaf` (a tensor without grad_fn that requires a gradient).
[[nodiscard]] GradReadyHookHandle add_grad_ready_hook(const Tensor& leaf, GradReadyHook hook);

}  // namespace ember
