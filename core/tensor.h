// Tensor: float32, contiguous, row-major (NCHW for images), rank <= 5, on CPU or CUDA.
//
// A Tensor is a cheap handle (shared_ptr) to a TensorImpl. Copying the handle shares the
// data, like PyTorch; clone() copies the data. Views (reshape) share storage and record an
// autograd node so gradients flow through them.
//
// Integer labels and uint8 images never become Tensors: they stay std::vector<int32_t> /
// std::vector<uint8_t> in the data loaders and are converted to float or passed as an index
// array to the one op that needs them (cross_entropy). One dtype keeps every kernel simple.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/shape.h"
#include "core/storage.h"

namespace ember {

struct Node;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // ---- factories -------------------------------------------------------------------
  static Tensor empty(const Shape& shape, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, Device device = Device::CPU);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::CPU);
  static Tensor scalar(float value, Device device = Device::CPU) { return full(Shape{}, value, device); }

  // ---- properties ------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int dim() const { return shape().rank(); }
  int64_t size(int d) const { return shape()[d]; }
  int64_t numel() const { return shape().numel(); }
  Device device() const;
  bool is_cuda() const { return device() == Device::CUDA; }

  // Raw element pointer (a device pointer for CUDA tensors). For kernels and I/O.
  float* data() const;

  // ---- data movement (always explicit) ---------------------------------------------
  Tensor to(Device device) const;           // a copy on `device` (shares if already there)
  Tensor clone() const;                     // a copy of the data, same device, no autograd history
  std::vector<float> to_vector() const;     // copies to host
  float item() const;                       // value of a one-element tensor
  void copy_(const Tensor& src) const;          // copies src's data into this (shapes must match; any devices)
  void fill_(float value) const;            // no autograd (handle semantics: const like data())
  void zero_() const { fill_(0.0f); }

  // ---- views -----------------------------------------------------------------------
  // reshape: same data, new shape (one dim may be -1). Differentiable.
  Tensor reshape(const std::vector<int64_t>& dims) const;
  Tensor flatten(int start_dim = 1) const;  // [N, ...] -> [N, prod(...)]
  // A tensor sharing this data without autograd history.
  Tensor detach() const;

  // ---- autograd --------------------------------------------------------------------
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);   // only on leaves
  Tensor grad() const;                      // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();                         // drops the gradient (like set_to_none=True)
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const;
  // Backpropagates from this tensor. Without `grad` it must hold one element (a loss).
  void backward(const Tensor& grad = Tensor()) const;

  // ---- internals, for ops --------------------------------------------------------
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  TensorImpl* impl() const { return impl_.get(); }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }
  void set_grad_fn(std::shared_ptr<Node> fn);

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
  // Leaves: callbacks run when a backward has completed this tensor's gradient (autograd.h,
  // add_grad_ready_hook), by id so that their owners can remove them.
  std::vector<std::pair<int64_t, std::function<void(const Tensor&)>>> grad_ready_hooks;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);  // shape, device and a few values

}  // namespace ember
