// Op entries for conv2d and conv_transpose2d. Both run on the three kernels of kernels/conv.inc:
//
//                      forward                    d input                    d weight
//   conv2d             conv2d_forward(x, w)       backward_data(g, w)        backward_filter(x, g)
//   conv_transpose2d   backward_data(x, w)        conv2d_forward(g, w)       backward_filter(g, x)
//
// A transposed convolution is the adjoint of a convolution, so its weight [Ci, Co, K, K] is read
// as a conv weight [Co', Ci', K, K] with Co' = Ci (the channels of x) and Ci' = Co. Bias is added
// afterwards with ops::bias_add.
//
// conv2d_sn and conv_transpose2d_sn (spectral norm): the same kernels on the raw weight, then
// y = z / sigma + b in one pass instead of the bias add, one autograd node for the whole:
// d input = row two on dy / sigma, d weight = row three on dy then spectral_norm_backward.
#include "core/ops/sn_consumer.h"

namespace ember::ops {

namespace {

Tensor run_forward(const char* op, const Tensor& x, const Tensor& w, int stride, int pad, const Shape& y_shape) {
  Tensor y = Tensor::empty(y_shape, x.device());
  EMBER_DISPATCH(op, x.device(), conv2d_forward, x, w, stride, pad, y);
  return y;
}

Tensor run_backward_data(const char* op, const Tensor& dy, const Tensor& w, int stride, int pad,
                         const Shape& dx_shape) {
  Tensor dx = Tensor::empty(dx_shape, dy.device());
  EMBER_DISPATCH(op, dy.device(), conv2d_backward_data, dy, w, stride, pad, dx);
  return dx;
}

Tensor run_backward_filter(const char* op, const Tensor& x, const Tensor& dy, int stride, int pad,
                           const Shape& dw_shape) {
  Tensor dw = Tensor::empty(dw_shape, x.device());
  EMBER_DISPATCH(op, x.device(), conv2d_backward_filter, x, dy, stride, pad, dw);
  return dw;
}

// The checks both ops share: ranks, stride, padding, devices, bias length.
void check_common(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad,
                  bool transposed) {
  detail::check_rank(op, x, 4, "input [N, Ci, H, W]");
  detail::check_rank(op, w, 4, transposed ? "weight [Ci, Co, KH, KW]" : "weight [Co, Ci, KH, KW]");
  const int64_t out_channels = w.size(transposed ? 1 : 0);
  EMBER_CHECK(stride >= 1 && pad >= 0,
              op << ": expected stride >= 1 and pad >= 0, got stride " << stride << ", pad " << pad);
  if (b.defined())
    EMBER_CHECK(b.dim() == 1 && b.size(0) == out_channels,
                op << ": bias " << b.shape() << " should be [" << out_channels << "] for weight " << w.shape());
  ember::detail::common_device(op, {&x, &w, &b});
}

// The autograd node of either op (rows two and three of the table above). Saves only what the
// needed gradients read.
void record_conv(const char* op, Tensor& y, const Tensor& x, const Tensor& w, int stride, int pad, bool transposed) {
  const bool need_x = x.requires_grad(), need_w = w.requires_grad();
  Tensor sx = need_w ? x.detach() : Tensor(), sw = need_x ? w.detach() : Tensor();
  const Shape x_shape = x.shape(), w_shape = w.shape();
  record(op, y, {x, w}, [=](const Tensor& g) {
    const char* bop = transposed ? "conv_transpose2d backward" : "conv2d backward";
    Tensor dx, dw;
    if (need_x)
      dx = transposed ? run_forward(bop, g, sw, stride, pad, x_shape)
                      : run_backward_data(bop, g, sw, stride, pad, x_shape);
    if (need_w)
      dw = transposed ? run_backward_filter(bop, g, sx, stride, pad, w_shape)
                      : run_backward_filter(bop, sx, g, stride, pad, w_shape);
    return std::vector<Tensor>{dx, dw};
  });
}

// The output shape of conv2d after its checks (check_common first).
Shape conv2d_shape(const char* op, const Tensor& x, const Tensor& w, int stride, int pad) {
  EMBER_CHECK(x.size(1) == w.size(1), op << ": input " << x.shape() << " has " << x.size(1) << " channels but weight "
                                         << w.shape() << " expects " << w.size(1));
  const int64_t Hp = x.size(2) + 2 * pad, Wp = x.size(3) + 2 * pad;
  EMBER_CHECK(w.size(2) <= Hp && w.size(3) <= Wp, op << ": kernel " << w.size(2) << "x" << w.size(3) << " of weight "
                                                     << w.shape() << " is larger than the padded input " << Hp << "x"
                                                     << Wp << " (input " << x.shape() << ", pad " << pad << ")");
  return Shape{x.size(0), w.size(0), (Hp - w.size(2)) / stride + 1, (Wp - w.size(3)) / stride + 1};
}

// The output shape of conv_transpose2d after its checks (check_common first).
Shape conv_transpose2d_shape(const char* op, const Tensor& x, const Tensor& w, int stride, int pad, int output_pad) {
  EMBER_CHECK(x.size(1) == w.size(0), op << ": input " << x.shape() << " has " << x.size(1) << " channels but weight "
                                         << w.shape() << " (layout [Ci, Co, KH, KW]) expects " << w.size(0));
  EMBER_CHECK(output_pad >= 0 && output_pad < stride,
              op << ": output_pad must be in [0, stride), got " << output_pad << " with stride " << stride);
  const int64_t Ho = (x.size(2) - 1) * stride - 2 * pad + w.size(2) + output_pad;
  const int64_t Wo = (x.size(3) - 1) * stride - 2 * pad + w.size(3) + output_pad;
  EMBER_CHECK(Ho >= 1 && Wo >= 1, op << ": output would be " << Ho << "x" << Wo << " for input " << x.shape()
                                     << ", weight " << w.shape() << ", stride " << stride << ", pad " << pad
                                     << ", output_pad " << output_pad << "; expected a positive size");
  return Shape{x.size(0), w.size(1), Ho, Wo};
}

// The spectral-norm consumers' output and autograd node: z = conv(x, w) (or its transpose) becomes
// z / sigma + b in place; one node over x, w and b (see the header comment).
Tensor finish_sn(const char* op, Tensor z, const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad,
                 int dim, const SnScale& sn, bool transposed) {
  detail::sn_epilogue(op, z, sn.sigma, b);
  if (!any_requires_grad({x, w, b})) return z;
  const bool need_x = x.requires_grad(), need_w = w.requires_grad(), need_b = b.defined() && b.requires_grad();
  const detail::SnSaved s = detail::save_sn(w, dim, sn);
  Tensor sx = need_w ? x.detach() : Tensor();
  const Shape x_shape = x.shape();
  record(op, z, {x, w, b}, [=](const Tensor& g) {
    const char* bop = transposed ? "conv_transpose2d_sn backward" : "conv2d_sn backward";
    Tensor dx, dw, db;
    if (need_x) {
      const Tensor gs = detail::sn_scale_grad(bop, g, s.sigma);
      dx = transposed ? run_forward(bop, gs, s.w, stride, pad, x_shape)
                      : run_backward_data(bop, gs, s.w, stride, pad, x_shape);
    }
    if (need_w) {
      const Tensor gw = transposed ? run_backward_filter(bop, g, sx, stride, pad, s.w.shape())
                                   : run_backward_filter(bop, sx, g, stride, pad, s.w.shape());
      dw = detail::sn_weight_grad(bop, s, gw);
    }
    if (need_b) db = detail::bias_grad_of(bop, g);
    return std::vector<Tensor>{dx, dw, db};
  });
  return z;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad) {
  const char* op = "conv2d";
  check_common(op, x, w, b, stride, pad, false);
  Tensor y = run_forward(op, x, w, stride, pad, conv2d_shape(op, x, w, stride, pad));
  record_conv(op, y, x, w, stride, pad, false);
  return b.defined() ? bias_add(y, b) : y;
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad, int output_pad) {
  const char* op = "conv_transpose2d";
  check_common(op, x, w, b, stride, pad, true);
  Tensor y = run_backward_data(op, x, w, stride, pad, conv_transpose2d_shape(op, x, w, stride, pad, output_pad));
  record_conv(op, y, x, w, stride, pad, true);
  return b.defined() ? bias_add(y, b) : y;
}

Tensor conv2d_sn(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad, const SnScale& sn) {
  const char* op = "conv2d_sn";
  check_common(op, x, w, b, stride, pad, false);
  const int dim = detail::check_sn_scale(op, w, sn);
  Tensor z = run_forward(op, x, w, stride, pad, conv2d_shape(op, x, w, stride, pad));
  return finish_sn(op, z, x, w, b, stride, pad, dim, sn, false);
}

Tensor conv_transpose2d_sn(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad, int output_pad,
                           const SnScale& sn) {
  const char* op = "conv_transpose2d_sn";
  check_common(op, x, w, b, stride, pad, true);
  const int dim = detail::check_sn_scale(op, w, sn);
  Tensor z = run_backward_data(op, x, w, stride, pad, conv_transpose2d_shape(op, x, w, stride, pad, output_pad));
  return finish_sn(op, z, x, w, b, stride, pad, dim, sn, true);
}

}  // namespace ember::ops
