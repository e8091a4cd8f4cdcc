// Op entries for 2x2 average / max pooling and nearest 2x upsampling on [N, C, H, W].
#include "core/ops/op_util.h"

namespace ember::ops {

namespace {

void check_poolable(const char* op, const Tensor& x) {
  detail::check_rank(op, x, 4, "input [N, C, H, W]");
  EMBER_CHECK(x.size(2) % 2 == 0 && x.size(3) % 2 == 0,
              op << ": expected even H and W (2x2 windows, stride 2), got input " << x.shape());
}

Shape halved(const Tensor& x) { return Shape{x.size(0), x.size(1), x.size(2) / 2, x.size(3) / 2}; }

}  // namespace

Tensor avg_pool2x2(const Tensor& x) {
  const char* op = "avg_pool2x2";
  check_poolable(op, x);
  Tensor y = Tensor::empty(halved(x), x.device());
  EMBER_DISPATCH(op, x.device(), avgpool2x2_forward, x, y);
  record(op, y, {x}, [x_shape = x.shape()](const Tensor& g) {
    Tensor dx = Tensor::empty(x_shape, g.device());
    EMBER_DISPATCH("avg_pool2x2 backward", g.device(), avgpool2x2_backward, g, dx);
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor max_pool2x2(const Tensor& x) {
  const char* op = "max_pool2x2";
  check_poolable(op, x);
  Tensor y = Tensor::empty(halved(x), x.device());
  EMBER_DISPATCH(op, x.device(), maxpool2x2_forward, x, y);
  Tensor sx = x.detach();  // backward finds the maximum again
  record(op, y, {x}, [sx](const Tensor& g) {
    Tensor dx = detail::empty_like(sx);
    EMBER_DISPATCH("max_pool2x2 backward", sx.device(), maxpool2x2_backward, sx, g, dx);
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor upsample2x(const Tensor& x) {
  const char* op = "upsample2x";
  detail::check_rank(op, x, 4, "input [N, C, H, W]");
  Tensor y = Tensor::empty(Shape{x.size(0), x.size(1), 2 * x.size(2), 2 * x.size(3)}, x.device());
  EMBER_DISPATCH(op, x.device(), upsample2x_forward, x, y);
  record(op, y, {x}, [x_shape = x.shape()](const Tensor& g) {
    Tensor dx = Tensor::empty(x_shape, g.device());
    EMBER_DISPATCH("upsample2x backward", g.device(), upsample2x_backward, g, dx);
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace ember::ops
