// GEMM family: cpu::matmul (BLAS path when linked) and the built-in blocked fallback against a
// naive double-precision product; ops::matmul / ops::linear gradients and argument checks.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "kernels/cpu/gemm_fallback.h"
#include "kernels/kernels.h"
#include "tests/harness.h"
#include "tests/reference.h"

using namespace ember;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Dims {
  int64_t M, N, K;
};

// Sizes with 1s, primes, and (for the fallback) sizes past its 64 x 128 x 256 blocks.
const Dims kSmall[] = {{1, 1, 1}, {7, 13, 5}, {37, 1, 53}, {1, 29, 3}, {64, 65, 33}, {2, 131, 17}};
const Dims kLarge[] = {{70, 130, 300}, {131, 257, 11}, {5, 3, 517}};

double rel_err_vec(const std::vector<float>& out, const std::vector<double>& ref) {
  return test::rel_err(Tensor::from_vector(out, Shape{static_cast<int64_t>(out.size())}), ref);
}

// Runs the raw fallback with padded leading dimensions (lda = cols + 2, ...), checks the result
// and that the padding columns of C were left alone.
void check_fallback(const Dims& s, bool ta, bool tb, float alpha, float beta, uint64_t seed) {
  const int64_t a_rows = ta ? s.K : s.M, a_cols = ta ? s.M : s.K;
  const int64_t b_rows = tb ? s.N : s.K, b_cols = tb ? s.K : s.N;
  const int64_t lda = a_cols + 2, ldb = b_cols + 1, ldc = s.N + 3;
  std::vector<float> a = test::random_tensor(Shape{a_rows * lda}, seed).to_vector();
  std::vector<float> b = test::random_tensor(Shape{b_rows * ldb}, seed + 1).to_vector();
  std::vector<float> c = test::random_tensor(Shape{s.M * ldc}, seed + 2).to_vector();
  const float pad_mark = 123.0f;
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = s.N; j < ldc; ++j) c[i * ldc + j] = pad_mark;
  if (beta == 0.0f)
    for (int64_t i = 0; i < s.M; ++i)
      for (int64_t j = 0; j < s.N; ++j) c[i * ldc + j] = kNaN;
  std::vector<double> ref = test::ref::gemm(ta, tb, s.M, s.N, s.K, alpha, a, lda, b, ldb, beta, c, ldc);
  cpu::detail::gemm_fallback(ta, tb, s.M, s.N, s.K, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  bool pad_kept = true;
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = s.N; j < ldc; ++j) {
      pad_kept = pad_kept && c[i * ldc + j] == pad_mark;
      c[i * ldc + j] = 0.0f;  // ref holds 0 there
    }
  INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " ta=" << ta << " tb=" << tb << " alpha=" << alpha
            << " beta=" << beta);
  CHECK(pad_kept);
  CHECK(rel_err_vec(c, ref) < 1e-5);
}

// cpu::matmul on tensors (a 3-D or shared 2-D a when batch > 0).
void check_matmul(const Dims& s, int64_t batch, bool shared_a, bool ta, bool tb, float alpha, float beta,
                  uint64_t seed) {
  auto mat = [&](int64_t r, int64_t c, bool batched) { return batched ? Shape{batch, r, c} : Shape{r, c}; };
  const bool bt = batch > 0;
  Tensor a = test::random_tensor(mat(ta ? s.K : s.M, ta ? s.M : s.K, bt && !shared_a), seed);
  Tensor b = test::random_tensor(mat(tb ? s.N : s.K, tb ? s.K : s.N, bt), seed + 1);
  Tensor c = beta == 0.0f ? Tensor::full(mat(s.M, s.N, bt), kNaN) : test::random_tensor(mat(s.M, s.N, bt), seed + 2);
  std::vector<float> av = a.to_vector(), bv = b.to_vector(), cv = c.to_vector();
  std::vector<double> ref;
  const int64_t nb = bt ? batch : 1;
  const int64_t a_size = (ta ? s.K : s.M) * (ta ? s.M : s.K), b_size = s.K * s.N, c_size = s.M * s.N;
  for (int64_t i = 0; i < nb; ++i) {
    auto slice = [](const std::vector<float>& v, int64_t off, int64_t n) {
      return std::vector<float>(v.begin() + off, v.begin() + off + n);
    };
    std::vector<double> r = test::ref::gemm(
        ta, tb, s.M, s.N, s.K, alpha, slice(av, (bt && !shared_a) ? i * a_size : 0, a_size), ta ? s.M : s.K,
        slice(bv, i * b_size, b_size), tb ? s.K : s.N, beta, slice(cv, i * c_size, c_size), s.N);
    ref.insert(ref.end(), r.begin(), r.end());
  }
  cpu::matmul(a, b, c, ta, tb, alpha, beta);
  INFO("M=" << s.M << " N=" << s.N << " K=" << s.K << " batch=" << batch << " shared_a=" << shared_a << " ta=" << ta
            << " tb=" << tb << " alpha=" << alpha << " beta=" << beta);
  CHECK(test::rel_err(c, ref) < 1e-5);
}

}  // namespace

TEST_CASE("gemm: cpu::matmul 2-D matches a double reference for all transposes, alpha and beta", "[gemm]") {
  uint64_t seed = 100;
  for (const Dims& s : kSmall)
    for (int t = 0; t < 4; ++t) {
      check_matmul(s, 0, false, t & 1, t & 2, 1.0f, 0.0f, seed++);  // beta 0: C holds NaNs, never read
      check_matmul(s, 0, false, t & 1, t & 2, -0.7f, 0.5f, seed++);
    }
  check_matmul(kLarge[0], 0, false, true, false, 1.5f, 1.0f, seed++);
}

TEST_CASE("gemm: cpu::matmul batched 3-D and with a shared 2-D left operand", "[gemm]") {
  uint64_t seed = 200;
  const Dims shapes[] = {{1, 1, 1}, {5, 7, 3}, {16, 9, 31}};
  for (const Dims& s : shapes)
    for (int64_t batch : {1, 3})
      for (int t = 0; t < 4; ++t) {
        check_matmul(s, batch, false, t & 1, t & 2, 1.0f, 0.0f, seed++);
        check_matmul(s, batch, true, t & 1, t & 2, 2.0f, -1.0f, seed++);
      }
}

TEST_CASE("gemm: an empty inner dimension gives beta * C", "[gemm]") {
  Tensor a = Tensor::empty(Shape{3, 0}), b = Tensor::empty(Shape{0, 4});
  Tensor c = Tensor::full(Shape{3, 4}, 2.0f);
  cpu::matmul(a, b, c, false, false, 1.0f, 0.5f);
  for (float v : c.to_vector()) CHECK(v == 1.0f);
  Tensor z = Tensor::full(Shape{3, 4}, kNaN);
  cpu::matmul(a, b, z, false, false, 1.0f, 0.0f);
  for (float v : z.to_vector()) CHECK(v == 0.0f);
}

TEST_CASE("gemm: the blocked fallback matches a double reference, with padded leading dimensions", "[gemm]") {
  uint64_t seed = 300;
  for (const Dims& s : kSmall)
    for (int t = 0; t < 4; ++t) {
      check_fallback(s, t & 1, t & 2, 1.0f, 0.0f, seed++);
      check_fallback(s, t & 1, t & 2, 0.3f, -2.0f, seed++);
    }
  for (const Dims& s : kLarge)
    for (int t = 0; t < 4; ++t) check_fallback(s, t & 1, t & 2, -1.25f, t == 3 ? 1.0f : 0.0f, seed++);
}

TEST_CASE("gemm: ops::matmul gradients for every transpose combination", "[gemm][autograd]") {
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const int64_t M = 3, K = 5, N = 2;
    Tensor a = test::random_param(ta ? Shape{K, M} : Shape{M, K}, 10 + t);
    Tensor b = test::random_param(tb ? Shape{N, K} : Shape{K, N}, 20 + t);
    auto f = [=](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1], ta, tb); };
    INFO("ta=" << ta << " tb=" << tb);
    CHECK(test::gradcheck(f, {a, b}) < 1e-2);
  }
}

TEST_CASE("gemm: ops::matmul gradients when batched and with a shared left operand", "[gemm][autograd]") {
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const int64_t B = 3, M = 2, K = 4, N = 5;
    Tensor a3 = test::random_param(ta ? Shape{B, K, M} : Shape{B, M, K}, 30 + t);
    Tensor a2 = test::random_param(ta ? Shape{K, M} : Shape{M, K}, 40 + t);
    Tensor b = test::random_param(tb ? Shape{B, N, K} : Shape{B, K, N}, 50 + t);
    auto f = [=](const std::vector<Tensor>& in) { return ops::matmul(in[0], in[1], ta, tb); };
    INFO("ta=" << ta << " tb=" << tb);
    CHECK(test::gradcheck(f, {a3, b}) < 1e-2);
    CHECK(test::gradcheck(f, {a2, b}) < 1e-2);
  }
}

TEST_CASE("gemm: ops::linear values and gradients, with and without bias", "[gemm][autograd]") {
  Tensor x = test::random_param(Shape{4, 7}, 60), w = test::random_param(Shape{3, 7}, 61);
  Tensor b = test::random_param(Shape{3}, 62);
  Tensor y = ops::linear(x, w, b);
  std::vector<float> xv = x.to_vector(), wv = w.to_vector(), bv = b.to_vector();
  std::vector<double> ref(4 * 3);
  for (int n = 0; n < 4; ++n)
    for (int o = 0; o < 3; ++o) {
      double s = bv[o];
      for (int i = 0; i < 7; ++i) s += static_cast<double>(xv[n * 7 + i]) * wv[o * 7 + i];
      ref[n * 3 + o] = s;
    }
  CHECK(test::rel_err(y, ref) < 1e-6);
  CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2]); }, {x, w, b}) <
        1e-2);
  CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1]); }, {x, w}) < 1e-2);
}

TEST_CASE("gemm: argument errors name the op and the shapes", "[gemm][errors]") {
  Tensor a = test::random_tensor(Shape{3, 4}, 1), b = test::random_tensor(Shape{5, 2}, 2);
  REQUIRE_THROWS_WITH(ops::matmul(a, b), Catch::Contains("matmul") && Catch::Contains("[3, 4]") &&
                                             Catch::Contains("[5, 2]") && Catch::Contains("inner dimensions"));
  REQUIRE_NOTHROW(ops::matmul(a, test::random_tensor(Shape{2, 4}, 3), false, true));
  REQUIRE_THROWS_WITH(ops::matmul(test::random_tensor(Shape{2, 3, 4}, 4), test::random_tensor(Shape{3, 4, 2}, 5)),
                      Catch::Contains("batch sizes differ"));
  REQUIRE_THROWS_WITH(ops::matmul(test::random_tensor(Shape{2, 3, 4}, 4), b), Catch::Contains("3-D"));
  REQUIRE_THROWS_WITH(ops::matmul(test::random_tensor(Shape{4}, 4), b), Catch::Contains("matmul"));
  REQUIRE_THROWS_WITH(ops::linear(a, test::random_tensor(Shape{2, 5}, 6)),
                      Catch::Contains("linear") && Catch::Contains("[3, 4]") && Catch::Contains("[2, 5]"));
  REQUIRE_THROWS_WITH(ops::linear(a, test::random_tensor(Shape{2, 4}, 6), test::random_tensor(Shape{3}, 7)),
                      Catch::Contains("linear: bias [3]"));
}

TEST_CASE("gemm: NaN and Inf in an operand reach the outputs they touch (0 * Inf is NaN)", "[gemm][nonfinite]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // a [2, 2] x b [2, 2]: a NaN in row 0 of a spoils row 0 of the product; an Inf in b times a
  // zero of a gives NaN, times a non-zero Inf.
  Tensor a = Tensor::from_vector({nan, 1.f, 0.f, 2.f}, Shape{2, 2});
  Tensor b = Tensor::from_vector({inf, 1.f, 1.f, 1.f}, Shape{2, 2});
  CHECK(test::same_values(ops::matmul(a, b), {nan, nan, nan, 2.f}));
  Tensor c = Tensor::from_vector({1.f, 0.f, 0.f, 1.f}, Shape{2, 2});  // identity: 0 * inf still is NaN
  CHECK(test::same_values(ops::matmul(c, b), {inf, 1.f, nan, 1.f}));
}
