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

}  // namespace ember
