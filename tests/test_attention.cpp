// Attention core (ops::attention, ops::attention_probs and the CPU kernels) against a naive
// double-precision computation written here, independently of kernels/cpu/: it materialises the
// whole score map per batch. Gradients: against the same double computation and by finite
// differences through autograd.
//
// Two CPU implementations are checked on the same shapes: the double reference
// (cpu::reference::, the oracle of the CUDA tests; one float rounding at the end, so ~1e-7) and
// the float kernels that training runs (cpu::attention_*). Float tolerance 5e-6 for o, lse and
// the gradients: the scores carry ~|s| * 6e-8 absolute error from float GEMMs, which exp turns
// into that relative error in p, plus float sums over M and dk (measured on these shapes: at most
// 5e-7 forward, 6e-7 backward, 2e-7 on the peaked rows).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_reference.h"
#include "kernels/kernels.h"
#include "tests/harness.h"

using namespace ember;

namespace {

struct Ref {
  std::vector<double> o, lse, dq, dk, dv;  // o [B,dv,N], lse [B,N], gradients in the inputs' layouts
};

// The textbook computation, in double: S = Q^T K, P = softmax_rows(S), O = V P^T, and for a given
// dO the gradients dV = dO P, dP = dO^T V, dS = P o (dP - rowsum(P o dP)), dQ = K dS^T, dK = Q dS.
Ref naive(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* d_o = nullptr) {
  const int64_t B = q.size(0), dk = q.size(1), N = q.size(2), M = k.size(2), dv = v.size(1);
  std::vector<double> Q = test::to_double(q), K = test::to_double(k), V = test::to_double(v), G;
  if (d_o) G = test::to_double(*d_o);
  Ref r;
  r.o.assign(B * dv * N, 0.0);
  r.lse.assign(B * N, 0.0);
  if (d_o) {
    r.dq.assign(B * dk * N, 0.0);
    r.dk.assign(B * dk * M, 0.0);
    r.dv.assign(B * dv * M, 0.0);
  }
  std::vector<double> P(N * M), dS(N * M);
  for (int64_t b = 0; b < B; ++b) {
    auto q_ = [&](int64_t c, int64_t i) { return Q[(b * dk + c) * N + i]; };
    auto k_ = [&](int64_t c, int64_t j) { return K[(b * dk + c) * M + j]; };
    auto v_ = [&](int64_t c, int64_t j) { return V[(b * dv + c) * M + j]; };
    for (int64_t i = 0; i < N; ++i) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < M; ++j) {
        double s = 0;
        for (int64_t c = 0; c < dk; ++c) s += q_(c, i) * k_(c, j);
        P[i * M + j] = s;
        mx = std::max(mx, s);
      }
      double sum = 0;
      for (int64_t j = 0; j < M; ++j) sum += std::exp(P[i * M + j] - mx);
      for (int64_t j = 0; j < M; ++j) P[i * M + j] = std::exp(P[i * M + j] - mx) / sum;
      r.lse[b * N + i] = mx + std::log(sum);
      for (int64_t c = 0; c < dv; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < M; ++j) acc += P[i * M + j] * v_(c, j);
        r.o[(b * dv + c) * N + i] = acc;
      }
    }
    if (!d_o) continue;
    auto g_ = [&](int64_t c, int64_t i) { return G[(b * dv + c) * N + i]; };
    for (int64_t i = 0; i < N; ++i) {
      double rowsum = 0;
      for (int64_t j = 0; j < M; ++j) {
        double dp = 0;
        for (int64_t c = 0; c < dv; ++c) dp += g_(c, i) * v_(c, j);
        dS[i * M + j] = dp;
        rowsum += P[i * M + j] * dp;
      }
      for (int64_t j = 0; j < M; ++j) dS[i * M + j] = P[i * M + j] * (dS[i * M + j] - rowsum);
    }
    for (int64_t j = 0; j < M; ++j)
      for (int64_t i = 0; i < N; ++i) {
        for (int64_t c = 0; c < dv; ++c) r.dv[(b * dv + c) * M + j] += P[i * M + j] * g_(c, i);
        for (int64_t c = 0; c < dk; ++c) {
          r.dk[(b * dk + c) * M + j] += dS[i * M + j] * q_(c, i);
          r.dq[(b * dk + c) * N + i] += dS[i * M + j] * k_(c, j);
        }
      }
  }
  return r;
}

struct Case {
  int64_t B, dk, N, M, dv;
};

std::string describe(const Case& c) {
  return "B=" + std::to_string(c.B) + " dk=" + std::to_string(c.dk) + " N=" + std::to_string(c.N) +
         " M=" + std::to_string(c.M) + " dv=" + std::to_string(c.dv);
}

// Scores of size ~sqrt(dk)/3 with inputs in [-1, 1); a wider range on q gives peaked rows.
struct Inputs {
  Tensor q, k, v;
};
Inputs make_inputs(const Case& c, uint64_t seed, float q_range = 1.f) {
  return Inputs{test::random_tensor(Shape{c.B, c.dk, c.N}, seed, -q_range, q_range),
                test::random_tensor(Shape{c.B, c.dk, c.M}, seed + 1),
                test::random_tensor(Shape{c.B, c.dv, c.M}, seed + 2)};
}

}  // namespace

TEST_CASE("attention: CPU forward matches a naive double computation", "[attention]") {
  std::vector<Case> cases;
  // Every head and value dimension at the small sizes, both key counts (M = N and M = N/4).
  for (int64_t N : {4, 16, 64})
    for (int64_t M : {N, N / 4})
      for (int64_t dk : {1, 2, 8, 32})
        for (int64_t dv : {8, 16, 64, 256}) cases.push_back({N == 16 ? 1 : 3, dk, N, M, dv});
  // A few long rows, and odd or prime sizes, sizes of 1, a wide head; rows spanning several
  // query tiles of the float kernel with a partial last one (N = 1000, M = 300: tiles of 96).
  cases.push_back({1, 8, 1024, 256, 64});
  cases.push_back({1, 32, 1024, 1024, 16});
  cases.push_back({3, 2, 1024, 256, 8});
  cases.push_back({2, 3, 7, 13, 5});
  cases.push_back({1, 1, 1, 1, 1});
  cases.push_back({3, 5, 97, 1, 3});
  cases.push_back({2, 64, 33, 65, 17});
  cases.push_back({2, 7, 1000, 300, 9});
  uint64_t seed = 100;
  for (const Case& c : cases) {
    INFO(describe(c));
    Inputs in = make_inputs(c, seed += 3, c.dk == 1 ? 4.f : 1.f);
    Tensor o = ops::attention(in.q, in.k, in.v);  // the float kernel
    Tensor lse = Tensor::full(Shape{c.B, c.N}, NAN), ref_lse = Tensor::full(Shape{c.B, c.N}, NAN);
    Tensor o2 = Tensor::full(Shape{c.B, c.dv, c.N}, NAN), ref_o = Tensor::full(Shape{c.B, c.dv, c.N}, NAN);
    cpu::attention_forward(in.q, in.k, in.v, o2, lse);
    cpu::reference::attention_forward(in.q, in.k, in.v, ref_o, ref_lse);
    Ref r = naive(in.q, in.k, in.v);
    // The reference: double accumulation, one float rounding at the end.
    CHECK(test::rel_err(ref_o, r.o) < 1e-6);
    CHECK(test::rel_err(ref_lse, r.lse) < 1e-6);
    // The float kernel, through the op and directly.
    CHECK(test::rel_err(o, r.o) < 5e-6);
    CHECK(test::rel_err(o2, r.o) < 5e-6);
    CHECK(test::rel_err(lse, r.lse) < 5e-6);
  }
}

TEST_CASE("attention: peaked rows stay finite and exact (large scores)", "[attention]") {
  // Scores up to ~+-300: exp overflows without the max subtraction. Float scores carry up to
  // ~300 * 6e-8 = 2e-5 absolute error, but a peaked row's output is its few top keys' values,
  // which that barely moves (measured 2e-7): the float tolerance stays 5e-6.
  Case c{2, 8, 33, 17, 16};
  Inputs in = make_inputs(c, 7, 40.f);
  Tensor o = ops::attention(in.q, in.k, in.v);
  Tensor ref_o = Tensor::full(Shape{c.B, c.dv, c.N}, NAN), ref_lse = Tensor::full(Shape{c.B, c.N}, NAN);
  cpu::reference::attention_forward(in.q, in.k, in.v, ref_o, ref_lse);
  Ref r = naive(in.q, in.k, in.v);
  CHECK(test::all_finite(o));
  CHECK(test::rel_err(ref_o, r.o) < 1e-6);
  CHECK(test::rel_err(o, r.o) < 5e-6);
}

TEST_CASE("attention: CPU backward matches the double gradients", "[attention]") {
  std::vector<Case> cases = {{1, 1, 4, 4, 8},   {3, 2, 16, 4, 16},  {1, 8, 64, 64, 64},
                             {3, 32, 64, 16, 8}, {2, 3, 7, 13, 5},   {1, 8, 1024, 256, 16},
                             {1, 1, 1, 1, 1},    {2, 5, 31, 1, 256}, {2, 64, 33, 65, 17},
                             {2, 7, 1000, 300, 9}};
  uint64_t seed = 500;
  for (const Case& c : cases) {
    INFO(describe(c));
    Inputs in = make_inputs(c, seed += 4);
    Tensor d_o = test::random_tensor(Shape{c.B, c.dv, c.N}, seed + 3);
    Ref r = naive(in.q, in.k, in.v, &d_o);
    {  // The reference: o and lse arrive rounded to float, so dS carries ~1e-7 relative error.
      Tensor o = Tensor::full(Shape{c.B, c.dv, c.N}, NAN), lse = Tensor::full(Shape{c.B, c.N}, NAN);
      cpu::reference::attention_forward(in.q, in.k, in.v, o, lse);
      Tensor dq = Tensor::full(in.q.shape(), NAN), dk = Tensor::full(in.k.shape(), NAN),
             dv = Tensor::full(in.v.shape(), NAN);
      cpu::reference::attention_backward(in.q, in.k, in.v, o, lse, d_o, dq, dk, dv);
      CHECK(test::rel_err(dq, r.dq) < 1e-5);
      CHECK(test::rel_err(dk, r.dk) < 1e-5);
      CHECK(test::rel_err(dv, r.dv) < 1e-6);
    }
    {  // The float kernels, forward and backward.
      Tensor o = Tensor::full(Shape{c.B, c.dv, c.N}, NAN), lse = Tensor::full(Shape{c.B, c.N}, NAN);
      cpu::attention_forward(in.q, in.k, in.v, o, lse);
      Tensor dq = Tensor::full(in.q.shape(), NAN), dk = Tensor::full(in.k.shape(), NAN),
             dv = Tensor::full(in.v.shape(), NAN);
      cpu::attention_backward(in.q, in.k, in.v, o, lse, d_o, dq, dk, dv);
      CHECK(test::rel_err(dq, r.dq) < 5e-6);
      CHECK(test::rel_err(dk, r.dk) < 5e-6);
      CHECK(test::rel_err(dv, r.dv) < 5e-6);
    }
  }
}

TEST_CASE("attention: gradients through autograd match finite differences", "[attention][grad]") {
  for (Case c : {Case{2, 3, 5, 7, 4}, Case{1, 1, 6, 2, 3}, Case{3, 2, 4, 4, 2}}) {
    INFO(describe(c));
    Tensor q = test::random_param(Shape{c.B, c.dk, c.N}, 31);
    Tensor k = test::random_param(Shape{c.B, c.dk, c.M}, 32);
    Tensor v = test::random_param(Shape{c.B, c.dv, c.M}, 33);
    auto f = [](const std::vector<Tensor>& in) { return ops::attention(in[0], in[1], in[2]); };
    CHECK(test::gradcheck(f, {q, k, v}) < 1e-2);
  }
}

TEST_CASE("attention: autograd gradients equal the kernel's", "[attention][grad]") {
  Case c{3, 8, 20, 9, 12};
  Tensor q = test::random_param(Shape{c.B, c.dk, c.N}, 41);
  Tensor k = test::random_param(Shape{c.B, c.dk, c.M}, 42);
  Tensor v = test::random_param(Shape{c.B, c.dv, c.M}, 43);
  Tensor d_o = test::random_tensor(Shape{c.B, c.dv, c.N}, 44);
  ops::attention(q, k, v).backward(d_o);  // the float kernels
  Ref r = naive(q, k, v, &d_o);
  CHECK(test::rel_err(q.grad(), r.dq) < 5e-6);
  CHECK(test::rel_err(k.grad(), r.dk) < 5e-6);
  CHECK(test::rel_err(v.grad(), r.dv) < 5e-6);
}

TEST_CASE("attention: attention_probs rows sum to 1 and match the map", "[attention]") {
  for (Case c : {Case{1, 8, 64, 16, 1}, Case{3, 2, 37, 37, 1}, Case{3, 1, 5, 1, 1}}) {
    INFO(describe(c));
    Inputs in = make_inputs(c, 900 + c.N);
    std::vector<int64_t> pos = {0, c.N - 1, c.N / 2, 0};  // repeats are allowed
    Tensor p = ops::attention_probs(in.q, in.k, pos);
    REQUIRE(p.shape() == Shape({c.B, 4, c.M}));
    std::vector<float> pv = p.to_vector();
    // The expected rows, from the naive map: p_ij = exp(s_ij - lse_i).
    const std::vector<double> Q = test::to_double(in.q), K = test::to_double(in.k);
    Ref r = naive(in.q, in.k, in.v);
    std::vector<double> expect(pv.size());
    for (int64_t b = 0; b < c.B; ++b)
      for (size_t n = 0; n < pos.size(); ++n) {
        double rowsum = 0;
        for (int64_t j = 0; j < c.M; ++j) {
          double s = 0;
          for (int64_t ch = 0; ch < c.dk; ++ch)
            s += Q[(b * c.dk + ch) * c.N + pos[n]] * K[(b * c.dk + ch) * c.M + j];
          expect[(b * 4 + n) * c.M + j] = std::exp(s - r.lse[b * c.N + pos[n]]);
          rowsum += pv[(b * 4 + n) * c.M + j];
        }
        CHECK(rowsum == Approx(1.0).epsilon(1e-5));
      }
    CHECK(test::rel_err(p, expect) < 1e-6);
  }
}

TEST_CASE("attention: shape and position errors name the op and the shapes", "[attention][errors]") {
  Tensor q = test::random_tensor(Shape{2, 4, 10}, 1), k = test::random_tensor(Shape{2, 4, 6}, 2);
  Tensor v = test::random_tensor(Shape{2, 8, 6}, 3);
  REQUIRE_NOTHROW(ops::attention(q, k, v));
  CHECK_THROWS_WITH(ops::attention(q, test::random_tensor(Shape{2, 3, 6}, 4), v),
                    Catch::Contains("attention") && Catch::Contains("head dimension"));
  CHECK_THROWS_WITH(ops::attention(q, test::random_tensor(Shape{3, 4, 6}, 4), v), Catch::Contains("batch"));
  CHECK_THROWS_WITH(ops::attention(q, k, test::random_tensor(Shape{2, 8, 5}, 5)),
                    Catch::Contains("v [2, 8, 5]") && Catch::Contains("M = 6"));
  CHECK_THROWS_WITH(ops::attention(q.reshape({2, 40}), k, v), Catch::Contains("q [B, dk, N]"));
  CHECK_THROWS_WITH(ops::attention_probs(q, k, {0, 10}), Catch::Contains("query position 10"));
  CHECK_THROWS_WITH(ops::attention_probs(q, k, {-1}), Catch::Contains("outside [0, 10)"));
  CHECK_THROWS_WITH(ops::attention_probs(q, k, {}), Catch::Contains("no query positions"));
}

TEST_CASE("attention: a NaN query spoils its output column only and a NaN key every output", "[attention][nonfinite]") {
  const int64_t B = 1, dk = 2, N = 5, M = 5, dv = 3;
  std::vector<float> qv = test::random_tensor(Shape{B, dk, N}, 501).to_vector();
  Tensor k = test::random_tensor(Shape{B, dk, M}, 502), v = test::random_tensor(Shape{B, dv, M}, 503);
  qv[2] = std::nanf("");  // channel 0 of query 2
  std::vector<float> o = ops::attention(Tensor::from_vector(qv, Shape{B, dk, N}), k, v).to_vector();  // [B, dv, N]
  for (int64_t c = 0; c < dv; ++c)
    for (int64_t n = 0; n < N; ++n) CHECK(std::isnan(o[c * N + n]) == (n == 2));
  std::vector<float> kv = k.to_vector();
  kv[M + 1] = std::numeric_limits<float>::infinity();  // +Inf in a key: inf * q of either sign, then inf - inf
  std::vector<float> qa = test::random_tensor(Shape{B, dk, N}, 504).to_vector();
  std::vector<float> o2 = ops::attention(Tensor::from_vector(qa, Shape{B, dk, N}), Tensor::from_vector(kv, Shape{B, dk, M}), v).to_vector();
  // Query n's score for key 1 is +Inf when q[1, n] > 0 (softmax of a row holding +Inf: NaN, as
  // PyTorch), -Inf otherwise (weight 0: a finite output).
  for (int64_t c = 0; c < dv; ++c)
    for (int64_t n = 0; n < N; ++n) CHECK(std::isnan(o2[c * N + n]) == (qa[N + n] > 0));
  kv[M + 1] = std::nanf("");
  for (float x : ops::attention(Tensor::from_vector(qa, Shape{B, dk, N}), Tensor::from_vector(kv, Shape{B, dk, M}), v).to_vector())
    CHECK(std::isnan(x));
}
