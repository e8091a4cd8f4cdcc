// Op entries for the attention core of the SAGAN block: ops::attention (differentiable, saves
// q, k, v, o and the per-query log-sum-exp for a backward that recomputes the scores) and
// ops::attention_probs (the weights of a few chosen queries, for pictures; no autograd).
#include "core/ops/op_util.h"

namespace ember::ops {

namespace {

// q [B, dk, N] and k [B, dk, M]: same batch, same head dimension.
void check_qk(const char* op, const Tensor& q, const Tensor& k) {
  detail::check_rank(op, q, 3, "q [B, dk, N]");
  detail::check_rank(op, k, 3, "k [B, dk, M]");
  EMBER_CHECK(q.size(0) == k.size(0), op << ": q " << q.shape() << " and k " << k.shape() << " differ in batch");
  EMBER_CHECK(q.size(1) == k.size(1),
              op << ": q " << q.shape() << " and k " << k.shape() << " differ in head dimension dk (dim 1)");
  EMBER_CHECK(q.size(1) > 0 && q.size(2) > 0 && k.size(2) > 0,
              op << ": empty q " << q.shape() << " or k " << k.shape() << " (dk, N and M must be >= 1)");
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  check_qk("attention", q, k);
  detail::check_rank("attention", v, 3, "v [B, dv, M]");
  EMBER_CHECK(v.size(0) == q.size(0) && v.size(2) == k.size(2),
              "attention: v " << v.shape() << " must be [B, dv, M] with B = " << q.size(0) << " and M = " << k.size(2)
                              << " (k is " << k.shape() << ")");
  EMBER_CHECK(v.size(1) > 0, "attention: v " << v.shape() << " has no value channels");
  Device d = ember::detail::common_device("attention", {&q, &k, &v});
  const int64_t B = q.size(0), N = q.size(2), dv = v.size(1);
  Tensor o = Tensor::empty(Shape{B, dv, N}, d);
  Tensor lse = Tensor::empty(Shape{B, N}, d);
  EMBER_DISPATCH("attention", d, attention_forward, q, k, v, o, lse);
  if (any_requires_grad({q, k, v})) {
    Tensor sq = q.detach(), sk = k.detach(), sv = v.detach(), so = o.detach();
    record("attention", o, {q, k, v}, [sq, sk, sv, so, lse, d](const Tensor& g) {
      Tensor dq = detail::empty_like(sq), dk = detail::empty_like(sk), dv = detail::empty_like(sv);
      EMBER_DISPATCH("attention backward", d, attention_backward, sq, sk, sv, so, lse, g, dq, dk, dv);
      return std::vector<Tensor>{dq, dk, dv};
    });
  }
  return o;
}

Tensor attention_probs(const Tensor& q, const Tensor& k, const std::vector<int64_t>& query_positions) {
  check_qk("attention_probs", q, k);
  Device d = ember::detail::common_device("attention_probs", {&q, &k});
  const int64_t B = q.size(0), N = q.size(2), M = k.size(2);
  const int64_t nq = static_cast<int64_t>(query_positions.size());
  EMBER_CHECK(nq > 0, "attention_probs: no query positions given (q is " << q.shape() << ")");
  // Indices travel as floats (one dtype): exact below 2^24.
  EMBER_CHECK(N <= (int64_t{1} << 24), "attention_probs: N = " << N << " query positions exceed 2^24");
  std::vector<float> idx(nq);
  for (int64_t n = 0; n < nq; ++n) {
    const int64_t p = query_positions[n];
    EMBER_CHECK(p >= 0 && p < N, "attention_probs: query position " << p << " (entry " << n << ") is outside [0, "
                                                                     << N << ") for q " << q.shape());
    idx[n] = static_cast<float>(p);
  }
  Tensor query_idx = Tensor::from_vector(idx, Shape{nq}, d);
  Tensor probs = Tensor::empty(Shape{B, nq, M}, d);
  EMBER_DISPATCH("attention_probs", d, attention_probs, q, k, query_idx, probs);
  return probs;
}

}  // namespace ember::ops
