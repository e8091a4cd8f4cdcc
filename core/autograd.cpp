#include "core/autograd.h"

#include <atomic>
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

// Calls the gradient-ready hooks of a leaf (autograd.h). A copy: a hook may remove itself.
void fire_grad_ready(const Tensor& leaf) {
  if (leaf.impl()->grad_ready_hooks.empty()) return;
  const auto hooks = leaf.impl()->grad_ready_hooks;
  for (const auto& h : hooks) h.second(leaf);
}

// Gradients still to reach each leaf in this backward: one per edge from a node of the graph to
// the leaf. A leaf is complete when its count drops to zero (every node that reads it has run or
// was skipped); `received` says whether any of those edges brought a gradient.
struct LeafCount {
  int remaining = 0;
  bool received = false;
};
bool is_hooked_leaf(const Tensor& t) {
  return t.defined() && !t.grad_fn() && t.requires_grad() && !t.impl()->grad_ready_hooks.empty();
}
}  // namespace

GradReadyHookHandle& GradReadyHookHandle::operator=(GradReadyHookHandle&& o) noexcept {
  if (this != &o) {
    reset();
    leaf_ = std::move(o.leaf_);
    id_ = o.id_;
    o.id_ = 0;
  }
  return *this;
}

void GradReadyHookHandle::reset() {
  if (leaf_.defined()) {
    auto& hooks = leaf_.impl()->grad_ready_hooks;
    for (auto it = hooks.begin(); it != hooks.end(); ++it)
      if (it->first == id_) {
        hooks.erase(it);
        break;
      }
  }
  leaf_ = Tensor();
  id_ = 0;
}

GradReadyHookHandle add_grad_ready_hook(const Tensor& leaf, GradReadyHook hook) {
  EMBER_CHECK(leaf.defined(), "add_grad_ready_hook: undefined tensor");
  EMBER_CHECK(!leaf.grad_fn() && leaf.requires_grad(),
              "add_grad_ready_hook: the tensor of shape " << leaf.shape()
                                                          << " is not a leaf that requires a gradient (a parameter)");
  EMBER_CHECK(hook, "add_grad_ready_hook: empty callback");
  static std::atomic<int64_t> next_id{1};
  const int64_t id = next_id++;
  leaf.impl()->grad_ready_hooks.emplace_back(id, std::move(hook));
  return GradReadyHookHandle(leaf, id);
}

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
    fire_grad_ready(root);
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

  // Edges into hooked leaves, so that their hooks fire as soon as their gradient is complete.
  std::unordered_map<TensorImpl*, LeafCount> leaf_counts;
  for (const auto& node : order)
    for (const Tensor& in : node->inputs)
      if (is_hooked_leaf(in)) ++leaf_counts[in.impl()].remaining;

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
          if (!leaf_counts.empty()) {
            auto c = leaf_counts.find(in.impl());
            if (c != leaf_counts.end()) c->second.received = true;
          }
        }
      }
    }
    // This node's edges into hooked leaves are settled, whether it ran or got no gradient.
    if (!leaf_counts.empty())
      for (const Tensor& in : node->inputs) {
        auto c = leaf_counts.find(in.defined() ? in.impl() : nullptr);
        if (c == leaf_counts.end() || --c->second.remaining > 0) continue;
        const bool received = c->second.received;
        leaf_counts.erase(c);
        if (received) fire_grad_ready(in);
      }
    // Free what the node saved; the graph cannot be walked again.
    node->backward = nullptr;
    node->inputs.clear();
    node->released = true;
  }
}

}  // namespace ember
