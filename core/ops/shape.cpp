// Op entries for concat, narrow and split along dim 0. Rows of a contiguous tensor are one
// contiguous range of its storage, so every one of these is a few Tensor::copy_ calls on row
// views (works on any device, no kernel needed).
#include <string>

#include "core/ops/op_util.h"

namespace ember::ops {

namespace {

// A view (no autograd) of rows [start, start + len) of dim 0, sharing x's storage.
Tensor rows(const Tensor& x, int64_t start, int64_t len) {
  const int64_t row = x.size(0) == 0 ? 0 : x.numel() / x.size(0);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.impl()->storage;
  impl->offset = x.impl()->offset + start * row;
  impl->shape = x.shape();
  impl->shape[0] = len;
  return Tensor(std::move(impl));
}

void check_rows(const char* op, const Tensor& x) {
  detail::check_defined(op, x, "input");
  EMBER_CHECK(x.dim() >= 1, op << ": input must have at least one dimension, got " << x.shape());
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs) {
  EMBER_CHECK(!xs.empty(), "concat: no inputs");
  for (size_t i = 0; i < xs.size(); ++i) {
    EMBER_CHECK(xs[i].defined(), "concat: input " << i << " is undefined");
    EMBER_CHECK(xs[i].dim() >= 1, "concat: input " << i << " must have at least one dimension, got " << xs[i].shape());
  }
  const Shape& s0 = xs[0].shape();
  int64_t total = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    bool ok = s.rank() == s0.rank();
    for (int d = 1; ok && d < s.rank(); ++d) ok = s[d] == s0[d];
    EMBER_CHECK(ok, "concat: input " << i << " has shape " << s << " but input 0 has " << s0
                                     << "; all dimensions except 0 must match");
    EMBER_CHECK(xs[i].device() == xs[0].device(), "concat: input " << i << " is on " << xs[i].device()
                                                                    << " but input 0 is on " << xs[0].device());
    total += s[0];
  }
  Shape out_shape = s0;
  out_shape[0] = total;
  Tensor y = Tensor::empty(out_shape, xs[0].device());
  std::vector<int64_t> starts, lens;
  int64_t at = 0;
  for (const Tensor& x : xs) {
    rows(y, at, x.size(0)).copy_(x);
    starts.push_back(at);
    lens.push_back(x.size(0));
    at += x.size(0);
  }
  record("concat", y, xs, [starts, lens](const Tensor& g) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < starts.size(); ++i) grads.push_back(rows(g, starts[i], lens[i]).clone());
    return grads;
  });
  return y;
}

Tensor narrow(const Tensor& x, int64_t start, int64_t length) {
  check_rows("narrow", x);
  EMBER_CHECK(start >= 0 && length >= 0 && start + length <= x.size(0),
              "narrow: rows [" << start << ", " << start + length << ") are outside dim 0 of " << x.shape());
  Tensor y = rows(x, start, length).clone();
  Shape in_shape = x.shape();
  record("narrow", y, {x}, [in_shape, start, length](const Tensor& g) {
    Tensor dx = Tensor::zeros(in_shape, g.device());
    rows(dx, start, length).copy_(g);
    return std::vector<Tensor>{dx};
  });
  return y;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes) {
  check_rows("split", x);
  int64_t total = 0;
  std::string listed;
  for (int64_t s : sizes) {
    EMBER_CHECK(s >= 0, "split: negative size " << s);
    total += s;
    listed += (listed.empty() ? "" : ", ") + std::to_string(s);
  }
  EMBER_CHECK(total == x.size(0), "split: sizes {" << listed << "} sum to " << total << " but dim 0 of "
                                                   << x.shape() << " is " << x.size(0));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(x, at, s));
    at += s;
  }
  return out;
}

}  // namespace ember::ops
