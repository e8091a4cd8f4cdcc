// Op entries for sum and mean over all elements or over given dimensions.
#include <algorithm>

#include "core/ops/op_util.h"

namespace ember::ops {

namespace {

// Sums x viewed as [outer, mid, inner] over mid, scaled; the building block of every reduction.
Tensor reduce_mid(const Tensor& x, int64_t outer, int64_t mid, int64_t inner, float scale_by, const Shape& out_shape) {
  Tensor y = Tensor::empty(out_shape, x.device());
  EMBER_DISPATCH("sum", x.device(), sum_mid, x, outer, mid, inner, y);
  if (scale_by != 1.0f) EMBER_DISPATCH("mean", x.device(), scale_shift, y, scale_by, 0.0f, y);
  Shape in_shape = x.shape();
  record("sum", y, {x}, [=](const Tensor& g) {
    Tensor dx = Tensor::empty(in_shape, g.device());
    EMBER_DISPATCH("sum backward", g.device(), broadcast_mid, g, outer, mid, inner, scale_by, dx);
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor reduce_dims(const char* op, const Tensor& x, std::vector<int> dims, bool keepdim, bool is_mean) {
  detail::check_defined(op, x, "input");
  const int r = x.dim();
  for (int& d : dims) {
    int nd = d < 0 ? d + r : d;
    EMBER_CHECK(nd >= 0 && nd < r, op << ": dimension " << d << " out of range for shape " << x.shape());
    d = nd;
  }
  std::sort(dims.begin(), dims.end());
  dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  int64_t count = 1;
  for (int d : dims) count *= x.size(d);
  // Reduce one dimension at a time from the last, keeping it (size 1) so indices stay valid.
  Tensor y = x;
  for (auto it = dims.rbegin(); it != dims.rend(); ++it) {
    int d = *it;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < d; ++i) outer *= y.size(i);
    for (int i = d + 1; i < r; ++i) inner *= y.size(i);
    std::vector<int64_t> shp = y.shape().vec();
    shp[d] = 1;
    y = reduce_mid(y, outer, y.size(d), inner, 1.0f, Shape(shp));
  }
  if (is_mean && count > 0) y = scale(y, 1.0f / static_cast<float>(count));
  if (!keepdim) {
    std::vector<int64_t> shp;
    for (int i = 0; i < r; ++i)
      if (!std::binary_search(dims.begin(), dims.end(), i)) shp.push_back(y.size(i));
    y = y.reshape(shp);
  }
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) {
  detail::check_defined("sum", x, "input");
  return reduce_mid(x, 1, x.numel(), 1, 1.0f, Shape{});
}

Tensor mean(const Tensor& x) {
  detail::check_defined("mean", x, "input");
  EMBER_CHECK(x.numel() > 0, "mean: input " << x.shape() << " has no elements");
  return reduce_mid(x, 1, x.numel(), 1, 1.0f / static_cast<float>(x.numel()), Shape{});
}

Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return reduce_dims("sum", x, dims, keepdim, false);
}

Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return reduce_dims("mean", x, dims, keepdim, true);
}

}  // namespace ember::ops
