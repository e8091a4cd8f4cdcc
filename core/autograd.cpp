#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/dispatch.h"
#include "kernels/kernels.h"

namespace ember {

namespace {
thread_local bool g_grad_enabled = true;
thread_local bool g_in_backward = false;

// Marks this thread as running backward functions while alive (restores the old value: a
// backward function may itself call backward()).
class BackwardScope {
 public:
  BackwardScope() : saved_(g_in_backward) { g_in_backward = true; }
  ~BackwardScope() { g_in_backward = saved_; }
  BackwardScope(const BackwardScope&) = delete;
  BackwardScope& operator=(const BackwardScope&) = delete;

 private:
  bool saved_;
};

// a + b into a fresh tensor. Gradient tensors are never modified in place, so a gradient
// returned by one node may safely be shared (e.g. add's backward returns g for both inputs).
Tensor sum_of(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.shape() == b.shape(), "backward: gradient shapes disagree: " << a.shape() << " vs " << b.shape());
  Tensor y = Tensor::empty(a.shape(), a.device());
  Device d = detail::common_device("backward accumulate", {&a, &b});
  EMBER_DISPATCH("backward accumulate", d, add, a, b, y);
  return y;
}
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
bool in_backward() { return g_in_backward; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

bool any_requires_grad(const std::vector<Tensor>& ts) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : ts)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool record(const char* name, Tensor& out, std::vector<Tensor> inputs, Node::BackwardFn backward) {
  if (!any_requires_grad(inputs)) return false;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  out.impl()->requires_grad = true;
  out.set_grad_fn(std::move(node));
  return true;
}

void run_backward(const Tensor& root, const Tensor& grad_in) {
  EMBER_CHECK(root.defined(), "backward: tensor is undefined");
  EMBER_CHECK(root.requires_grad(), "backward: tensor does not require grad (no graph was recorded for it)");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    EMBER_CHECK(root.numel() == 1, "backward: called on a tensor of shape " << root.shape()
                                       << " without a gradient; only one-element tensors (losses) can omit it");
    grad = Tensor::full(root.shape(), 1.0f, root.device());
  }
  EMBER_CHECK(grad.shape() == root.shape(),
              "backward: gradient shape " << grad.shape() << " does not match tensor " << root.shape());
  NoGradGuard no_grad;  // backward functions build no graph
  BackwardScope in_backward_scope;

  if (root.is_leaf()) {
    root.impl()->grad = root.grad().defined() ? sum_of(root.grad(), grad) : grad;
    return;
  }

  // Topological order of the nodes reachable from root (iterative DFS, post-order).
  // `order` owns the nodes: releasing a node's inputs may drop the last other reference to them.
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root.grad_fn(), 0}};
  seen.insert(root.grad_fn().get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    EMBER_CHECK(!node->released, "backward: the graph through '" << node->name
                                     << "' was already freed by an earlier backward()");
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      if (in.defined() && in.grad_fn() && !seen.count(in.grad_fn().get())) {
        seen.insert(in.grad_fn().get());
        stack.push_back({in.grad_fn(), 0});
      }
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  // Walk outputs before inputs, summing the gradients that reach each node's output.
  std::unordered_map<Node*, Tensor> pending;
  pending[root.grad_fn().get()] = grad;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = it->get();
    auto found = pending.find(node);
    if (found != pending.end()) {
      Tensor g = found->second;
      pending.erase(found);
      std::vector<Tensor> grads = node->backward(g);
      EMBER_CHECK(grads.size() == node->inputs.size(),
                  "backward of '" << node->name << "' returned " << grads.size() << " gradients for "
                                  << node->inputs.size() << " inputs");
      for (size_t i = 0; i < grads.size(); ++i) {
        const Tensor& in = node->inputs[i];
        const Tensor& gi = grads[i];
        if (!in.defined() || !gi.defined() || !in.requires_grad()) continue;
        EMBER_CHECK(gi.shape() == in.shape(), "backward of '" << node->name << "': gradient " << gi.shape()
                                                              << " for input " << i << " of shape " << in.shape());
        if (in.grad_fn()) {
          auto p = pending.find(in.grad_fn().get());
          if (p == pending.end()) pending.emplace(in.grad_fn().get(), gi);
          else p->second = sum_of(p->second, gi);
        } else {
          in.impl()->grad = in.grad().defined() ? sum_of(in.grad(), gi) : gi;
        }
      }
    }
    // Free what the node saved; the graph cannot be walked again.
    node->backward = nullptr;
    node->inputs.clear();
    node->released = true;
  }
}

}  // namespace ember
