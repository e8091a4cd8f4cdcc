#include "core/tensor.h"

#include <cstring>
#include <iomanip>
#include <ostream>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "kernels/kernels.h"
#ifdef EMBER_WITH_CUDA
#include "core/device_memory.h"
#endif

namespace ember {

namespace {

const TensorImpl& checked(const TensorImpl* impl, const char* what) {
  EMBER_CHECK(impl, what << ": tensor is undefined");
  return *impl;
}

// Copies bytes between any two devices; the one place where data crosses devices.
void copy_bytes(void* dst, Device dd, const void* src, Device sd, size_t bytes) {
  if (bytes == 0) return;
  if (dd == Device::CPU && sd == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef EMBER_WITH_CUDA
  if (dd == Device::CUDA && sd == Device::CPU) return cuda_rt::copy_host_to_device(dst, src, bytes);
  if (dd == Device::CPU && sd == Device::CUDA) return cuda_rt::copy_device_to_host(dst, src, bytes);
  return cuda_rt::copy_device_to_device(dst, src, bytes);
#else
  EMBER_FAIL("copy involving cuda: ember was built without the CUDA backend");
#endif
}

}  // namespace

// ---- factories ------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(static_cast<size_t>(shape.numel()) * sizeof(float), device);
  impl->shape = shape;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, Device device) { return full(shape, 0.0f, device); }

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  EMBER_CHECK(static_cast<int64_t>(values.size()) == shape.numel(),
              "Tensor::from_vector: " << values.size() << " values for shape " << shape);
  Tensor t = empty(shape, device);
  copy_bytes(t.data(), device, values.data(), Device::CPU, values.size() * sizeof(float));
  return t;
}

// ---- properties ---------------------------------------------------------------------------

const Shape& Tensor::shape() const { return checked(impl_.get(), "shape").shape; }
Device Tensor::device() const { return checked(impl_.get(), "device").storage->device(); }
float* Tensor::data() const {
  const TensorImpl& i = checked(impl_.get(), "data");
  return static_cast<float*>(i.storage->data()) + i.offset;
}

// ---- data movement -----------------------------------------------------------------------

Tensor Tensor::to(Device device) const {
  if (this->device() == device) return *this;
  Tensor t = empty(shape(), device);
  copy_bytes(t.data(), device, data(), this->device(), numel() * sizeof(float));
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), device());
  copy_bytes(t.data(), device(), data(), device(), numel() * sizeof(float));
  return t;
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  copy_bytes(out.data(), Device::CPU, data(), device(), out.size() * sizeof(float));
  return out;
}

float Tensor::item() const {
  EMBER_CHECK(numel() == 1, "item(): tensor has " << numel() << " elements " << shape() << ", expected 1");
  return to_vector()[0];
}

void Tensor::copy_(const Tensor& src) const {
  EMBER_CHECK(src.numel() == numel(), "copy_: source " << src.shape() << " does not match destination " << shape());
  copy_bytes(data(), device(), src.data(), src.device(), numel() * sizeof(float));
}

void Tensor::fill_(float value) const {
  if (numel() == 0) return;
  Tensor self = *this;
  EMBER_DISPATCH("fill", device(), fill, self, value);
}

// ---- views ---------------------------------------------------------------------------------

Tensor Tensor::reshape(const std::vector<int64_t>& dims) const {
  std::vector<int64_t> d = dims;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] == -1) {
      EMBER_CHECK(infer < 0, "reshape: more than one -1 in the new shape");
      infer = static_cast<int>(i);
    } else {
      known *= d[i];
    }
  }
  if (infer >= 0) {
    EMBER_CHECK(known > 0 && numel() % known == 0, "reshape: cannot infer -1 for " << numel() << " elements");
    d[infer] = numel() / known;
  }
  Shape ns(d);
  EMBER_CHECK(ns.numel() == numel(), "reshape: " << shape() << " (" << numel() << " elements) cannot become " << ns);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = ns;
  Tensor out(std::move(impl));
  std::vector<int64_t> old = shape().vec();
  record("reshape", out, {*this}, [old](const Tensor& g) { return std::vector<Tensor>{g.reshape(old)}; });
  return out;
}

Tensor Tensor::flatten(int start_dim) const {
  std::vector<int64_t> d;
  int64_t rest = 1;
  for (int i = 0; i < dim(); ++i) {
    if (i < start_dim) d.push_back(size(i));
    else rest *= size(i);
  }
  d.push_back(rest);
  return reshape(d);
}

Tensor Tensor::detach() const {
  const TensorImpl& self = checked(impl_.get(), "detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = self.storage;
  impl->offset = self.offset;
  impl->shape = self.shape;
  return Tensor(std::move(impl));
}

// ---- autograd -------------------------------------------------------------------------------

bool Tensor::requires_grad() const { return checked(impl_.get(), "requires_grad").requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  EMBER_CHECK(is_leaf(), "requires_grad_: only leaf tensors (not results of ops) can be marked");
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return checked(impl_.get(), "grad").grad; }
void Tensor::set_grad(const Tensor& g) {
  checked(impl_.get(), "set_grad");
  EMBER_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient " << g.shape() << " for tensor " << shape());
  impl_->grad = g;
}
void Tensor::zero_grad() {
  checked(impl_.get(), "zero_grad");
  impl_->grad = Tensor();
}
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_.get(), "grad_fn").grad_fn; }
bool Tensor::is_leaf() const { return grad_fn() == nullptr; }
void Tensor::set_grad_fn(std::shared_ptr<Node> fn) { impl_->grad_fn = std::move(fn); }

void Tensor::backward(const Tensor& grad) const { run_backward(*this, grad); }

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "Tensor(" << t.shape() << ", " << t.device();
  std::vector<float> v = t.to_vector();
  os << ", [";
  for (size_t i = 0; i < v.size() && i < 8; ++i) os << (i ? ", " : "") << std::setprecision(5) << v[i];
  if (v.size() > 8) os << ", ...";
  return os << "])";
}

}  // namespace ember
