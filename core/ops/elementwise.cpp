// Op entries for elementwise maps and activations: check, allocate, dispatch, record.
#include "core/ops/op_util.h"

namespace ember::ops {

using detail::check_same_shape;
using detail::empty_like;

Tensor add(const Tensor& a, const Tensor& b) {
  check_same_shape("add", a, b);
  Device d = ember::detail::common_device("add", {&a, &b});
  Tensor y = empty_like(a);
  EMBER_DISPATCH("add", d, add, a, b, y);
  record("add", y, {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  check_same_shape("sub", a, b);
  Device d = ember::detail::common_device("sub", {&a, &b});
  Tensor y = empty_like(a);
  EMBER_DISPATCH("sub", d, sub, a, b, y);
  record("sub", y, {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, scale(g, -1.0f)}; });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_same_shape("mul", a, b);
  Device d = ember::detail::common_device("mul", {&a, &b});
  Tensor y = empty_like(a);
  EMBER_DISPATCH("mul", d, mul, a, b, y);
  Tensor sa = a.detach(), sb = b.detach();
  record("mul", y, {a, b}, [sa, sb](const Tensor& g) { return std::vector<Tensor>{mul(g, sb), mul(g, sa)}; });
  return y;
}

Tensor scale(const Tensor& x, float alpha) {
  detail::check_defined("scale", x, "input");
  Tensor y = empty_like(x);
  EMBER_DISPATCH("scale", x.device(), scale_shift, x, alpha, 0.0f, y);
  record("scale", y, {x}, [alpha](const Tensor& g) { return std::vector<Tensor>{scale(g, alpha)}; });
  return y;
}

Tensor add_scalar(const Tensor& x, float beta) {
  detail::check_defined("add_scalar", x, "input");
  Tensor y = empty_like(x);
  EMBER_DISPATCH("add_scalar", x.device(), scale_shift, x, 1.0f, beta, y);
  record("add_scalar", y, {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return y;
}

Tensor bias_add(const Tensor& x, const Tensor& bias) {
  detail::check_defined("bias_add", x, "input");
  detail::check_rank("bias_add", bias, 1, "bias [C]");
  EMBER_CHECK(x.dim() >= 2 && x.size(1) == bias.size(0),
              "bias_add: input " << x.shape() << " needs dim 1 equal to bias length " << bias.size(0));
  Device d = ember::detail::common_device("bias_add", {&x, &bias});
  Tensor y = empty_like(x);
  EMBER_DISPATCH("bias_add", d, bias_add, x, bias, y);
  record("bias_add", y, {x, bias}, [d, C = bias.size(0)](const Tensor& g) {
    Tensor db = Tensor::empty(Shape{C}, d);
    EMBER_DISPATCH("bias_add backward", d, bias_grad, g, db);
    return std::vector<Tensor>{g, db};
  });
  return y;
}

// ---- activations --------------------------------------------------------------------------------

namespace {
// Every activation has this shape: y = f(x), and a backward kernel that reads one saved tensor:
// x for relu-like maps, y for tanh-like ones (cheaper than recomputing f). fwd and bwd wrap the
// dispatch; the saved tensor is detached (a node never holds its own output).
template <class Fwd, class Bwd>
Tensor activation(const char* name, const Tensor& x, bool save_output, Fwd fwd, Bwd bwd) {
  detail::check_defined(name, x, "input");
  Tensor y = empty_like(x);
  fwd(x, y);
  Tensor saved = save_output ? y.detach() : x.detach();
  record(name, y, {x}, [saved, bwd](const Tensor& g) {
    Tensor dx = empty_like(saved);
    bwd(saved, g, dx);
    return std::vector<Tensor>{dx};
  });
  return y;
}
}  // namespace

Tensor relu(const Tensor& x) {
  return activation(
      "relu", x, false, [](const Tensor& in, Tensor& y) { EMBER_DISPATCH("relu", in.device(), relu_forward, in, y); },
      [](const Tensor& sx, const Tensor& g, Tensor& dx) {
        EMBER_DISPATCH("relu backward", sx.device(), relu_backward, sx, g, dx);
      });
}

Tensor leaky_relu(const Tensor& x, float slope) {
  return activation(
      "leaky_relu", x, false,
      [slope](const Tensor& in, Tensor& y) { EMBER_DISPATCH("leaky_relu", in.device(), leaky_relu_forward, in, slope, y); },
      [slope](const Tensor& sx, const Tensor& g, Tensor& dx) {
        EMBER_DISPATCH("leaky_relu backward", sx.device(), leaky_relu_backward, sx, slope, g, dx);
      });
}

Tensor tanh(const Tensor& x) {
  return activation(
      "tanh", x, true, [](const Tensor& in, Tensor& y) { EMBER_DISPATCH("tanh", in.device(), tanh_forward, in, y); },
      [](const Tensor& sy, const Tensor& g, Tensor& dx) {
        EMBER_DISPATCH("tanh backward", sy.device(), tanh_backward, sy, g, dx);
      });
}

Tensor sigmoid(const Tensor& x) {
  return activation(
      "sigmoid", x, true, [](const Tensor& in, Tensor& y) { EMBER_DISPATCH("sigmoid", in.device(), sigmoid_forward, in, y); },
      [](const Tensor& sy, const Tensor& g, Tensor& dx) {
        EMBER_DISPATCH("sigmoid backward", sy.device(), sigmoid_backward, sy, g, dx);
      });
}

Tensor gamma_residual(const Tensor& gamma, const Tensor& o, const Tensor& x) {
  check_same_shape("gamma_residual", o, x);
  detail::check_defined("gamma_residual", gamma, "gamma");
  EMBER_CHECK(gamma.numel() == 1, "gamma_residual: gamma must have one element, got " << gamma.shape());
  Device d = ember::detail::common_device("gamma_residual", {&gamma, &o, &x});
  Tensor y = empty_like(x);
  EMBER_DISPATCH("gamma_residual", d, gamma_residual_forward, gamma, o, x, y);
  Tensor sg = gamma.detach(), so = o.detach();
  record("gamma_residual", y, {gamma, o, x}, [sg, so, d](const Tensor& g) {
    Tensor dgamma = Tensor::empty(sg.shape(), d), d_o = empty_like(so);
    EMBER_DISPATCH("gamma_residual backward", d, gamma_residual_backward, sg, so, g, dgamma, d_o);
    return std::vector<Tensor>{dgamma, d_o, g};
  });
  return y;
}

}  // namespace ember::ops
