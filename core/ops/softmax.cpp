// Op entry for softmax over the last dimension: check, allocate, dispatch, record.
#include "core/ops/op_util.h"

namespace ember::ops {

Tensor softmax(const Tensor& x) {
  detail::check_defined("softmax", x, "input");
  Tensor y = detail::empty_like(x);
  if (x.numel() > 0) EMBER_DISPATCH("softmax", x.device(), softmax_forward, x, y);
  // The backward needs only the output: dx = y * (dy - sum(y * dy)) per row.
  Tensor sy = y.detach();
  record("softmax", y, {x}, [sy](const Tensor& g) {
    Tensor dx = detail::empty_like(sy);
    if (sy.numel() > 0) {
      Device d = ember::detail::common_device("softmax backward", {&sy, &g});
      EMBER_DISPATCH("softmax backward", d, softmax_backward, sy, g, dx);
    }
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace ember::ops
