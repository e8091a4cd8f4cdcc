// Op entries for matrix products: matmul (2-D, batched 3-D, or a 2-D left operand shared by a
// batch) and linear, with their autograd rules; linear_sn, linear with spectral norm applied as
// y = (x W^T) / sigma + b in the bias epilogue (W / sigma never formed).
#include "core/ops/sn_consumer.h"

namespace ember::ops {

namespace {

// a [M*K] repeated `batch` times: [batch, rows, cols] (the shared operand made explicit).
Tensor repeat_batch(const Tensor& a, int64_t batch) {
  Tensor y = Tensor::empty(Shape{batch, a.size(0), a.size(1)}, a.device());
  EMBER_DISPATCH("matmul backward", a.device(), broadcast_mid, a, 1, batch, a.numel(), 1.0f, y);
  return y;
}

}  // namespace

// c = op(a) op(b). With G = dL/dc:
//   d op(a) = G op(b)^T    and    d op(b) = op(a)^T G,
// transposed back when the operand was read transposed. A shared 2-D a sums its gradient over
// the batch.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const char* op = "matmul";
  detail::check_defined(op, a, "a");
  detail::check_defined(op, b, "b");
  const bool ranks_ok = (a.dim() == 2 && (b.dim() == 2 || b.dim() == 3)) || (a.dim() == 3 && b.dim() == 3);
  EMBER_CHECK(ranks_ok, op << ": expected a, b both 2-D, both 3-D, or a 2-D and b 3-D; got a " << a.shape() << " and b "
                           << b.shape());
  if (a.dim() == 3)
    EMBER_CHECK(a.size(0) == b.size(0), op << ": batch sizes differ: a " << a.shape() << " and b " << b.shape());
  const int64_t M = trans_a ? a.size(-1) : a.size(-2), Ka = trans_a ? a.size(-2) : a.size(-1);
  const int64_t Kb = trans_b ? b.size(-1) : b.size(-2), N = trans_b ? b.size(-2) : b.size(-1);
  EMBER_CHECK(Ka == Kb, op << ": inner dimensions differ: op(a) of a " << a.shape() << (trans_a ? " (transposed)" : "")
                           << " has " << Ka << " columns, op(b) of b " << b.shape() << (trans_b ? " (transposed)" : "")
                           << " has " << Kb << " rows");
  Device d = ember::detail::common_device(op, {&a, &b});

  const bool batched = b.dim() == 3;
  const bool shared_a = batched && a.dim() == 2;
  Tensor c = Tensor::empty(batched ? Shape{b.size(0), M, N} : Shape{M, N}, d);
  EMBER_DISPATCH(op, d, matmul, a, b, c, trans_a, trans_b, 1.0f, 0.0f);

  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  Tensor sa = need_b ? a.detach() : Tensor(), sb = need_a ? b.detach() : Tensor();  // save only what backward reads
  record(op, c, {a, b}, [=](const Tensor& g) {
    Tensor da, db;
    if (need_a) {
      da = trans_a ? matmul(sb, g, trans_b, true) : matmul(g, sb, false, !trans_b);
      if (shared_a) da = sum(da, {0});
    }
    if (need_b) {
      if (!trans_b)
        db = matmul(sa, g, !trans_a, false);
      else
        db = matmul(g, shared_a ? repeat_batch(sa, g.size(0)) : sa, true, trans_a);
    }
    return std::vector<Tensor>{da, db};
  });
  return c;
}

namespace {
// The checks linear and linear_sn share.
void check_linear(const char* op, const Tensor& x, const Tensor& w, const Tensor& b) {
  detail::check_rank(op, x, 2, "input [N, in]");
  detail::check_rank(op, w, 2, "weight [out, in]");
  EMBER_CHECK(x.size(1) == w.size(1), op << ": input " << x.shape() << " has " << x.size(1) << " features but weight "
                                         << w.shape() << " expects " << w.size(1));
  if (b.defined())
    EMBER_CHECK(b.dim() == 1 && b.size(0) == w.size(0),
                op << ": bias " << b.shape() << " should be [" << w.size(0) << "] for weight " << w.shape());
}
}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_linear("linear", x, w, b);
  Tensor y = matmul(x, w, false, true);  // [N, in] x [out, in]^T
  return b.defined() ? bias_add(y, b) : y;
}

// y = (x W^T) / sigma + b. With G = dL/dy: dx = (G / sigma) W, dL/d(W / sigma) = G^T x (then
// through sigma to W), db = column sums of G.
Tensor linear_sn(const Tensor& x, const Tensor& w, const Tensor& b, const SnScale& sn) {
  const char* op = "linear_sn";
  check_linear(op, x, w, b);
  const int dim = detail::check_sn_scale(op, w, sn);
  const Device d = ember::detail::common_device(op, {&x, &w, &b});
  Tensor y = Tensor::empty(Shape{x.size(0), w.size(0)}, d);  // [N, out]
  EMBER_DISPATCH(op, d, matmul, x, w, y, false, true, 1.0f, 0.0f);
  detail::sn_epilogue(op, y, sn.sigma, b);
  if (!any_requires_grad({x, w, b})) return y;
  const bool need_x = x.requires_grad(), need_w = w.requires_grad(), need_b = b.defined() && b.requires_grad();
  const detail::SnSaved s = detail::save_sn(w, dim, sn);
  Tensor sx = need_w ? x.detach() : Tensor();
  record(op, y, {x, w, b}, [=](const Tensor& g) {
    const char* bop = "linear_sn backward";
    Tensor dx, dw, db;
    if (need_x) {
      const Tensor gs = detail::sn_scale_grad(bop, g, s.sigma);
      dx = Tensor::empty(Shape{g.size(0), s.w.size(1)}, d);  // [N, out] x [out, in]
      EMBER_DISPATCH(bop, d, matmul, gs, s.w, dx, false, false, 1.0f, 0.0f);
    }
    if (need_w) {
      Tensor gw = detail::empty_like(s.w);  // [N, out]^T x [N, in]
      EMBER_DISPATCH(bop, d, matmul, g, sx, gw, true, false, 1.0f, 0.0f);
      dw = detail::sn_weight_grad(bop, s, gw);
    }
    if (need_b) db = detail::bias_grad_of(bop, g);
    return std::vector<Tensor>{dx, dw, db};
  });
  return y;
}

}  // namespace ember::ops
