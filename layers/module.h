// Module: the base of every layer and model. It owns named parameters (leaves that require
// grad), buffers (state that is saved but not trained: running statistics, spectral-norm u/v)
// and child modules, and exposes them recursively under dotted names exactly as PyTorch's
// nn.Module does ("ups.0.conv.weight_orig"), so a state_dict written here loads into the
// equivalent PyTorch module with load_state_dict(strict=True).
//
// Ownership: a module registers POINTERS to its own Tensor members (register_parameter(name,
// &weight)); modules are therefore neither copyable nor movable, and are held by shared_ptr.
// to(device) replaces those handles with copies on the new device, so an optimizer must be
// built after to() (it holds handles). load_state_dict copies data INTO the existing tensors,
// so handles held elsewhere (optimizers) stay valid.
//
// Devices: layers are built on the CPU, drawing their initial weights from an ember Generator
// (Philox), then moved with to(device); so one seed gives the same weights on CPU and CUDA.
//
// Order (as PyTorch): a module's own parameters in registration order, then its own buffers,
// then each child recursively. state_dict() = parameters and buffers in that order.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"

namespace ember {

// Ordered (name, tensor) pairs: what state_dict() returns and load_state_dict() takes.
using StateDict = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The forward pass of modules that map one tensor to one tensor (all layers and models here).
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Training mode (batch statistics, spectral-norm power iteration) or eval mode; recursive.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  std::vector<Tensor> parameters() const;
  StateDict named_parameters() const;
  StateDict named_buffers() const;
  StateDict state_dict() const;  // handles that share the module's data, as in PyTorch (clone to snapshot)
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }
  int64_t num_parameters() const;  // total elements over all parameters

  // Copies every entry of `sd` into the matching parameter or buffer (data only; handles kept).
  // strict: a missing entry, an unexpected entry or a shape mismatch is an error listing all of
  // them by name. Not strict: missing and unexpected entries are skipped, shape mismatches
  // are still errors (as PyTorch). Nothing is copied unless all checks pass.
  void load_state_dict(const StateDict& sd, bool strict = true);
  // The checks of load_state_dict alone: throws as it would, changes nothing.
  void check_state_dict(const StateDict& sd, bool strict = true) const;

  // Moves every parameter and buffer (recursively) to `device`. Gradients are dropped.
  void to(Device device);
  Device device() const;  // of the first parameter or buffer; CPU for a module without any
  void zero_grad();       // drops every parameter's gradient

 protected:
  // `slot` must point to a Tensor member of this module and already hold the value.
  // Parameters are made leaves that require grad; buffers never require grad.
  void register_parameter(const std::string& name, Tensor* slot);
  void register_buffer(const std::string& name, Tensor* slot);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  // Re-registers parameter `old_name` as `new_name` at the end of the list (what
  // torch.nn.utils.spectral_norm does to "weight" -> "weight_orig"), pointing at `slot`.
  void rename_parameter(const std::string& old_name, const std::string& new_name, Tensor* slot);

  void add_child(const std::string& name, std::shared_ptr<Module> m);

 private:
  struct Entry {
    std::string name;
    Tensor* slot;
  };
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool params, bool buffers, std::vector<std::pair<std::string, Tensor*>>& out) const;

  std::vector<Entry> params_;
  std::vector<Entry> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A list of child modules named "0", "1", ... (PyTorch's nn.ModuleList).
class ModuleList : public Module {
 public:
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    add_child(std::to_string(items_.size()), m);
    items_.push_back(m);
    return m;
  }
  size_t size() const { return items_.size(); }
  const std::shared_ptr<Module>& operator[](size_t i) const { return items_.at(i); }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

}  // namespace ember
